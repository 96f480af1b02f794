package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// parser walks the token stream statement by statement. Its error is
// sticky, as bufio.Scanner's: the first one stops the parse and every
// helper returns a zero value once it is set.
type parser struct {
	toks []token
	i    int
	cfg  *Config
	err  error

	syncIDSet bool // lvs_sync_daemon had an id
}

// stmt is one statement: a keyword and its arguments on one line, and
// whether a block follows (a '{' at the end of the line or alone on the
// next one).
type stmt struct {
	pos   Pos
	words []string
	block bool
}

func (s stmt) kw() string { return s.words[0] }

// next reads the next statement. It reports false at the end of the
// enclosing block (a '}', which it consumes) or of the input.
func (p *parser) next() (stmt, bool) {
	for p.i < len(p.toks) && p.toks[p.i].kind == tokEOL {
		p.i++
	}
	if p.err != nil || p.i >= len(p.toks) {
		return stmt{}, false
	}
	t := p.toks[p.i]
	switch t.kind {
	case tokClose:
		p.i++
		return stmt{pos: t.pos}, false
	case tokOpen:
		p.fail(t.pos, "'{' without a keyword")
		return stmt{}, false
	}
	st := stmt{pos: t.pos}
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch t.kind {
		case tokWord:
			st.words = append(st.words, t.s)
			p.i++
			continue
		case tokOpen:
			p.i++
			st.block = true
			return st, true
		case tokClose:
			return st, true
		}
		break // end of line
	}
	j := p.i
	for j < len(p.toks) && p.toks[j].kind == tokEOL {
		j++
	}
	if j < len(p.toks) && p.toks[j].kind == tokOpen {
		p.i = j + 1
		st.block = true
	}
	return st, true
}

// body runs fn on each statement of a block opened by open, up to its
// closing brace.
func (p *parser) body(open stmt, fn func(s stmt)) {
	for p.err == nil {
		s, ok := p.next()
		if !ok {
			if p.err == nil && s.pos == (Pos{}) {
				p.fail(open.pos, "%s: '{' is never closed", open.kw())
			}
			return
		}
		fn(s)
	}
}

// skip skips a block's statements.
func (p *parser) skip(open stmt) {
	p.body(open, func(s stmt) {
		if s.block {
			p.skip(s)
		}
	})
}

// needBlock checks that a block follows s; without one it fails.
func (p *parser) needBlock(s stmt) bool {
	if !s.block {
		p.fail(s.pos, "%s: missing '{'", s.kw())
		return false
	}
	return true
}

// noBlock refuses a block after a keyword that takes none.
func (p *parser) noBlock(s stmt) {
	if s.block {
		p.fail(s.pos, "%s: unexpected '{'", s.kw())
	}
}

func (p *parser) fail(pos Pos, format string, a ...any) {
	if p.err == nil {
		p.err = &Error{Pos: pos, Msg: fmt.Sprintf(format, a...)}
	}
}

func (p *parser) warn(pos Pos, format string, a ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Diag{pos, fmt.Sprintf(format, a...)})
}

// unknown warns about a keyword keepalived does not have (it logs
// "Unknown keyword") and skips its block.
func (p *parser) unknown(s stmt, where string) {
	p.warn(s.pos, "%s: unknown keyword %q, ignored", where, s.kw())
	if s.block {
		p.skip(s)
	}
}

// unsupported warns about a keepalived keyword uvs does not implement and
// skips its block.
func (p *parser) unsupported(s stmt, where string) {
	p.warn(s.pos, "%s: %s is not supported by uvs, ignored", where, s.kw())
	if s.block {
		p.skip(s)
	}
}

// str is argument n of s, which must be present.
func (p *parser) str(s stmt, n int) string {
	if len(s.words) <= n {
		p.fail(s.pos, "%s: missing argument", s.kw())
		return ""
	}
	return s.words[n]
}

// rest is the arguments from n on joined by spaces (a script and its
// user), which must be present.
func (p *parser) rest(s stmt, n int) string {
	if len(s.words) <= n {
		p.fail(s.pos, "%s: missing argument", s.kw())
		return ""
	}
	return strings.Join(s.words[n:], " ")
}

// uint is argument n of s as a decimal number in [lo, hi].
func (p *parser) uint(s stmt, n int, lo, hi uint64) uint64 {
	a := p.str(s, n)
	if p.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		p.fail(s.pos, "%s: bad number %q", s.kw(), a)
		return 0
	}
	if v < lo || v > hi {
		p.fail(s.pos, "%s: %d out of range %d-%d", s.kw(), v, lo, hi)
		return 0
	}
	return v
}

// int is argument n of s as a signed decimal number in [lo, hi].
func (p *parser) int(s stmt, n int, lo, hi int64) int64 {
	a := p.str(s, n)
	if p.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		p.fail(s.pos, "%s: bad number %q", s.kw(), a)
		return 0
	}
	if v < lo || v > hi {
		p.fail(s.pos, "%s: %d out of range %d-%d", s.kw(), v, lo, hi)
		return 0
	}
	return v
}

// maxTimer bounds times to what a Duration holds comfortably.
const maxTimer = 1e9 // seconds, about 31 years

// timer is argument n of s as keepalived's <TIMER>: seconds with an
// optional fraction, microsecond resolution.
func (p *parser) timer(s stmt, n int) time.Duration {
	a := p.str(s, n)
	if p.err != nil {
		return 0
	}
	d, ok := parseTimer(a)
	if !ok {
		p.fail(s.pos, "%s: bad time %q (want seconds, e.g. 3 or 0.5)", s.kw(), a)
		return 0
	}
	return d
}

// parseTimer parses digits[.digits] seconds, rounding to microseconds.
func parseTimer(a string) (time.Duration, bool) {
	if a == "" || a == "." {
		return 0, false
	}
	dot := false
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(a, 64)
	if err != nil || f > maxTimer {
		return 0, false
	}
	us := math.Round(f * 1e6)
	return time.Duration(us) * time.Microsecond, true
}

// boolArg is keepalived's optional <BOOL> at argument n: absent is true.
func (p *parser) boolArg(s stmt, n int) bool {
	if len(s.words) <= n {
		return true
	}
	switch strings.ToLower(s.words[n]) {
	case "on", "true", "yes":
		return true
	case "off", "false", "no":
		return false
	}
	p.fail(s.pos, "%s: bad boolean %q (want on, off, true, false, yes or no)", s.kw(), s.words[n])
	return false
}

// addr is argument n of s as an IP address.
func (p *parser) addr(s stmt, n int) netip.Addr {
	a := p.str(s, n)
	if p.err != nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		p.fail(s.pos, "%s: bad address %q", s.kw(), a)
		return netip.Addr{}
	}
	return ip.Unmap()
}

// port is argument n of s as a port, 1..65535.
func (p *parser) port(s stmt, n int) uint16 {
	return uint16(p.uint(s, n, 1, 65535))
}

// addrPort reads "<IPADDR> [<PORT>]" from argument n; a missing port is 0.
func (p *parser) addrPort(s stmt, n int) (netip.Addr, uint16) {
	if len(s.words) <= n {
		p.fail(s.pos, "%s: missing address", s.kw())
		return netip.Addr{}, 0
	}
	a := p.addr(s, n)
	if len(s.words) <= n+1 || p.err != nil {
		return a, 0
	}
	return a, uint16(p.uint(s, n+1, 0, 65535))
}

// extra warns about arguments past the n a keyword takes.
func (p *parser) extra(s stmt, n int) {
	if len(s.words) > n+1 {
		p.warn(s.pos, "%s: extra arguments %q ignored", s.kw(), strings.Join(s.words[n+1:], " "))
	}
}

// entries runs fn on each statement of a block made of plain entries (a
// list of names or addresses, one a line), with nested blocks refused.
func (p *parser) entries(open stmt, fn func(s stmt)) {
	p.body(open, func(s stmt) {
		if s.block {
			p.fail(s.pos, "%s: unexpected '{' in %s", s.kw(), open.kw())
			return
		}
		fn(s)
	})
}

// nestedOnly names the keywords that belong inside another block, with
// the block they belong to: outside it they are an error.
var nestedOnly = map[string]string{
	"real_server":       "virtual_server",
	"sorry_server":      "virtual_server",
	"lb_algo":           "virtual_server",
	"lvs_sched":         "virtual_server",
	"lb_kind":           "virtual_server",
	"lvs_method":        "virtual_server",
	"HTTP_GET":          "real_server",
	"SSL_GET":           "real_server",
	"TCP_CHECK":         "real_server",
	"MISC_CHECK":        "real_server",
	"SMTP_CHECK":        "real_server",
	"DNS_CHECK":         "real_server",
	"UDP_CHECK":         "real_server",
	"PING_CHECK":        "real_server",
	"FILE_CHECK":        "real_server",
	"BFD_CHECK":         "real_server",
	"url":               "HTTP_GET or SSL_GET",
	"virtual_ipaddress": "vrrp_instance",
	"authentication":    "vrrp_instance",
}

// misplaced fails on a keyword that belongs in another block, and reports
// whether it did.
func (p *parser) misplaced(s stmt) bool {
	if want, ok := nestedOnly[s.kw()]; ok {
		p.fail(s.pos, "%s outside %s", s.kw(), want)
		return true
	}
	return false
}
