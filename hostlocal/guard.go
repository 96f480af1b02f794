package hostlocal

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/uvs-project/uvs/nsexec"
)

// ErrClosed is returned by a Guard's methods after Close.
var ErrClosed = errors.New("hostlocal: guard closed")

// Guard is an nftables netdev ingress filter on one interface: it drops
// IPv4 frames whose destination is one of its VIPs unless their Ethernet
// source is one of its peers' MACs. Each Guard owns one table,
//
//	table netdev <table> {
//		counter dropped { }
//		set vips { type ipv4_addr; }
//		set peers { type ether_addr; }
//		chain ingress {
//			type filter hook ingress device "<ifname>" priority -500; policy accept;
//			ip daddr @vips ether saddr != @peers counter name "dropped" drop
//		}
//	}
//
// so several Guards, one per interface, coexist as long as their table
// names differ. The table lives in the network namespace that was the
// calling thread's when NewGuard ran; every later command runs there,
// whichever goroutine calls. A Guard is safe for concurrent use.
type Guard struct {
	table  string
	ifname string
	nft    *nsexec.Nft
}

// NewGuard creates the table netdev <table> with an ingress chain on
// ifname (priority -500, policy accept), empty sets vips and peers, and
// the drop rule; with no VIPs it drops nothing. A table of the same name
// left in the namespace (by a process that died before Close) is
// replaced in the same transaction, so table names must be unique per
// Guard: choose one that carries the caller's name and the interface,
// such as "uvs_eth0". It needs the nft command in PATH.
func NewGuard(table string, ifname string) (*Guard, error) {
	if !nsexec.ValidTable(table) {
		return nil, fmt.Errorf("hostlocal: invalid nft table name %q", table)
	}
	if err := checkIfname(ifname, false); err != nil {
		return nil, err
	}
	nft, err := nsexec.NewNft(ErrClosed)
	if err != nil {
		return nil, fmt.Errorf("hostlocal: %w", err)
	}
	g := &Guard{table: table, ifname: ifname, nft: nft}
	script := fmt.Sprintf(`add table netdev %[1]s
delete table netdev %[1]s
table netdev %[1]s {
	counter dropped { }
	set vips { type ipv4_addr; }
	set peers { type ether_addr; }
	chain ingress {
		type filter hook ingress device "%[2]s" priority -500; policy accept;
		ip daddr @vips ether saddr != @peers counter name "dropped" drop
	}
}
`, table, ifname)
	if _, err := g.run(script, "-f", "-"); err != nil {
		nft.Close()
		return nil, err
	}
	return g, nil
}

// Table returns the Guard's nft table name.
func (g *Guard) Table() string { return g.table }

// Interface returns the interface the Guard filters.
func (g *Guard) Interface() string { return g.ifname }

// SetVIPs replaces the vips set with addrs (IPv4, or IPv4-mapped IPv6) in
// one nft transaction: no frame ever sees a half-updated set.
func (g *Guard) SetVIPs(addrs []netip.Addr) error {
	elems := make([]string, 0, len(addrs))
	seen := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() {
			return fmt.Errorf("hostlocal: VIP %v is not IPv4", a)
		}
		if !seen[a] {
			seen[a] = true
			elems = append(elems, a.String())
		}
	}
	return g.replace("vips", elems)
}

// SetPeers replaces the peers set with macs in one nft transaction.
func (g *Guard) SetPeers(macs [][6]byte) error {
	elems := make([]string, 0, len(macs))
	seen := make(map[[6]byte]bool, len(macs))
	for _, m := range macs {
		if !seen[m] {
			seen[m] = true
			elems = append(elems, fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]))
		}
	}
	return g.replace("peers", elems)
}

// replace flushes a set and adds elems in one transaction.
func (g *Guard) replace(set string, elems []string) error {
	_, err := g.run(nsexec.ReplaceSet("netdev", g.table, set, elems), "-f", "-")
	return err
}

var counterText = regexp.MustCompile(`packets (\d+) bytes (\d+)`)

// Dropped returns how many frames (and bytes) the Guard's rule has
// dropped since NewGuard.
func (g *Guard) Dropped() (packets, bytes uint64, err error) {
	out, err := g.run("", "list", "counter", "netdev", g.table, "dropped")
	if err != nil {
		return 0, 0, err
	}
	m := counterText.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("hostlocal: no counter in nft output %q", out)
	}
	packets, err = strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	bytes, err = strconv.ParseUint(m[2], 10, 64)
	return packets, bytes, err
}

// Close deletes the table. Later calls return nil; the other methods
// return ErrClosed after it.
func (g *Guard) Close() error {
	if err := g.nft.Close("delete", "table", "netdev", g.table); err != nil {
		return fmt.Errorf("hostlocal: %w", err)
	}
	return nil
}

// run runs nft with args in the Guard's namespace, script on its stdin.
func (g *Guard) run(script string, args ...string) (string, error) {
	out, err := g.nft.Run(script, args...)
	if err != nil && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("hostlocal: %w", err)
	}
	return out, err
}
