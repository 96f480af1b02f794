package nfqueue

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uvs-project/uvs/nsexec"
)

// ErrRulesClosed is returned by a Rules' methods after Close.
var ErrRulesClosed = errors.New("nfqueue: rules closed")

// rulesPriority is just after mangle (-150), so marks set there count.
const rulesPriority = -140

// Rules owns one nftables table in the network namespace that was the
// calling thread's at NewRules:
//
//	table ip <name> {
//		set marks { type mark; }
//		chain prerouting {
//			type filter hook prerouting priority -140; policy accept;
//			meta mark @marks tcp flags & (syn | ack | rst) == syn queue num <Q> bypass
//			meta mark @marks meta l4proto udp queue num <Q> bypass
//		}
//	}
//
// Only connection openers go to the queue: the rest of a TCP connection
// reaches uvs through AF_PACKET like any other, once the SYN created the
// connection. bypass lets packets through while no Conn is bound; a
// director does not forward (ip_forward 0), so its kernel drops them.
// On a kernel without nft_queue the two rules end in the x_tables
// NFQUEUE target (`xt target "NFQUEUE"` in nft's listing) instead, with
// the same queue and bypass. A Rules is safe for concurrent use.
type Rules struct {
	table  string
	queue  uint16
	nft    *nsexec.Nft
	compat bool
}

// NewRules creates the table ip <table> for queue with an empty marks
// set, replacing a table of the same name (left by a process that died)
// in the same transaction. It needs the nft command in PATH.
func NewRules(table string, queue uint16) (*Rules, error) {
	if !nsexec.ValidTable(table) {
		return nil, fmt.Errorf("nfqueue: invalid nft table name %q", table)
	}
	nft, err := nsexec.NewNft(ErrRulesClosed)
	if err != nil {
		return nil, fmt.Errorf("nfqueue: %w", err)
	}
	r := &Rules{table: table, queue: queue, nft: nft}
	out, err := r.run(r.script(true), "-f", "-")
	if err != nil && noQueueExpr(out) {
		r.compat = true
		if _, err = r.run(r.script(false), "-f", "-"); err == nil {
			err = r.addCompatRules()
			if err != nil {
				_, _ = r.run("", "delete", "table", "ip", table)
			}
		}
	}
	if err != nil {
		nft.Close()
		return nil, err
	}
	return r, nil
}

// script is the table, with the queue rules or (compat) without them.
func (r *Rules) script(withRules bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "add table ip %[1]s\ndelete table ip %[1]s\ntable ip %[1]s {\n", r.table)
	fmt.Fprintf(&b, "\tset marks { type mark; }\n")
	fmt.Fprintf(&b, "\tchain prerouting {\n\t\ttype filter hook prerouting priority %d; policy accept;\n", rulesPriority)
	if withRules {
		fmt.Fprintf(&b, "\t\tmeta mark @marks tcp flags & (syn | ack | rst) == syn queue num %d bypass\n", r.queue)
		fmt.Fprintf(&b, "\t\tmeta mark @marks meta l4proto udp queue num %d bypass\n", r.queue)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// noQueueExpr reports whether nft failed because the kernel has no
// queue expression: the rules are the script's only ones, and every
// other expression in them is nf_tables core.
func noQueueExpr(nftOutput string) bool {
	return strings.Contains(nftOutput, "Could not process rule: No such file or directory")
}

// Table returns the nft table name.
func (r *Rules) Table() string { return r.table }

// Compat reports whether the rules use the x_tables NFQUEUE target
// because the kernel has no nft queue expression.
func (r *Rules) Compat() bool { return r.compat }

// SetMarks replaces the marks set with marks in one nft transaction: no
// packet sees a half-updated set. An empty list empties it.
func (r *Rules) SetMarks(marks []uint32) error {
	marks = slices.Clone(marks)
	slices.Sort(marks)
	marks = slices.Compact(marks)
	elems := make([]string, len(marks))
	for i, m := range marks {
		elems[i] = fmt.Sprintf("%#x", m)
	}
	_, err := r.run(nsexec.ReplaceSet("ip", r.table, "marks", elems), "-f", "-")
	return err
}

// Close deletes the table. Later calls return nil; the other methods
// return ErrRulesClosed after it.
func (r *Rules) Close() error {
	if err := r.nft.Close("delete", "table", "ip", r.table); err != nil {
		return fmt.Errorf("nfqueue: %w", err)
	}
	return nil
}

// run runs nft with args in the Rules' namespace, script on its stdin.
func (r *Rules) run(script string, args ...string) (string, error) {
	out, err := r.nft.Run(script, args...)
	if err != nil && !errors.Is(err, ErrRulesClosed) {
		err = fmt.Errorf("nfqueue: %w", err)
	}
	return out, err
}
