package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Diag is a warning with its position.
type Diag struct {
	Pos Pos
	Msg string
}

func (d Diag) String() string { return d.Pos.String() + ": " + d.Msg }

// Error is a configuration uvsd refuses: file:line: what is wrong.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Config is a parsed keepalived.conf.
type Config struct {
	Global         Global
	VirtualServers []VirtualServer
	VRRPInstances  []VRRPInstance
	Warnings       []Diag
}

// Global is global_defs.
type Global struct {
	RouterID    string
	LVSTimeouts LVSTimeouts
}

// LVSTimeouts is global_defs' lvs_timeouts (ipvsadm --set), seconds.
type LVSTimeouts struct{ TCP, TCPFin, UDP uint32 }

// VirtualServer is one virtual_server block.
type VirtualServer struct {
	Pos                    Pos
	Addr                   netip.Addr
	Port                   uint16
	FWMark                 uint32
	Protocol               string // TCP (default) or UDP
	LBAlgo                 string // default wlc, as keepalived
	LBKind                 string // NAT, DR, TUN, FNAT
	SchedFlags             []string
	PersistenceTimeout     uint32
	PersistenceGranularity netip.Addr
	DelayLoop              time.Duration
	RealServers            []RealServer
}

// PersistenceGranularityBits is the persistence netmask as prefix bits
// (32 when unset).
func (v *VirtualServer) PersistenceGranularityBits() int {
	if !v.PersistenceGranularity.IsValid() {
		return 32
	}
	b := v.PersistenceGranularity.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for m&0x80000000 != 0 {
		n++
		m <<= 1
	}
	return n
}

// RealServer is one real_server block.
type RealServer struct {
	Pos        Pos
	Addr       netip.Addr
	Port       uint16
	Weight     int32
	LBKind     string
	UThreshold uint32
	LThreshold uint32
}

// VRRPInstance is one vrrp_instance block (what uvsd uses of it so far).
type VRRPInstance struct {
	Pos                Pos
	Name               string
	VirtualIPAddresses []netip.Prefix
}

// Expanded is one concrete virtual service.
type Expanded struct {
	VS     *VirtualServer
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
}

// ExpandedServices lists the concrete services of the configuration.
func (c *Config) ExpandedServices() []Expanded {
	out := make([]Expanded, 0, len(c.VirtualServers))
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		out = append(out, Expanded{VS: vs, Addr: vs.Addr, Port: vs.Port, FWMark: vs.FWMark})
	}
	return out
}

// ParseFile reads a keepalived.conf.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse reads a keepalived.conf from r; name is used in positions and
// includes are resolved relative to its directory.
func Parse(name string, r io.Reader) (*Config, error) {
	toks, err := lex(name, r, 0)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, cfg: &Config{}}
	if err := p.top(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// token is one word of a line; line ends are kept as tokens because
// keepalived's grammar is line-oriented.
type token struct {
	s   string
	pos Pos
	eol bool
}

func lex(name string, r io.Reader, depth int) ([]token, error) {
	if depth > 8 {
		return nil, &Error{Pos{name, 0}, "include nesting too deep"}
	}
	var out []token
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		pos := Pos{name, line}
		words, err := splitLine(sc.Text(), pos)
		if err != nil {
			return nil, err
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "include" {
			if len(words) != 2 {
				return nil, &Error{pos, "include needs one file pattern"}
			}
			pat := words[1]
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(filepath.Dir(name), pat)
			}
			files, err := filepath.Glob(pat)
			if err != nil {
				return nil, &Error{pos, fmt.Sprintf("include %s: %v", words[1], err)}
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, &Error{pos, fmt.Sprintf("include: %v", err)}
				}
				t, err := lex(f, strings.NewReader(string(b)), depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, t...)
			}
			continue
		}
		for _, w := range words {
			out = append(out, token{s: w, pos: pos})
		}
		out = append(out, token{pos: pos, eol: true})
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Pos{name, line}, err.Error()}
	}
	return out, nil
}

// splitLine splits a line into words: braces are words of their own,
// '#' and '!' start comments, double quotes group.
func splitLine(s string, pos Pos) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in:
			if c == '"' {
				in = false
				out = append(out, cur.String())
				cur.Reset()
			} else {
				cur.WriteByte(c)
			}
		case c == '"':
			flush()
			in = true
		case c == '#' || c == '!':
			flush()
			return out, nil
		case c == '{' || c == '}':
			flush()
			out = append(out, string(c))
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	if in {
		return nil, &Error{pos, "unterminated quoted string"}
	}
	flush()
	return out, nil
}

type parser struct {
	toks []token
	i    int
	cfg  *Config
}

// stmt is one statement: a keyword, its arguments, and whether a block
// follows.
type stmt struct {
	pos   Pos
	words []string
	block bool
}

var errEnd = errors.New("end of block")

// next reads the next statement up to its end of line; a '{' at the end
// of the words opens a block, a lone '}' ends the current one.
func (p *parser) next() (stmt, error) {
	for p.i < len(p.toks) && p.toks[p.i].eol {
		p.i++
	}
	if p.i >= len(p.toks) {
		return stmt{}, io.EOF
	}
	st := stmt{pos: p.toks[p.i].pos}
	for p.i < len(p.toks) && !p.toks[p.i].eol {
		t := p.toks[p.i]
		p.i++
		switch t.s {
		case "}":
			if len(st.words) > 0 {
				p.i--
				return st, nil
			}
			return st, errEnd
		case "{":
			st.block = true
			return st, nil
		}
		st.words = append(st.words, t.s)
	}
	// A '{' alone on the next line opens a block too.
	j := p.i
	for j < len(p.toks) && p.toks[j].eol {
		j++
	}
	if j < len(p.toks) && p.toks[j].s == "{" {
		p.i = j + 1
		st.block = true
	}
	return st, nil
}

// skip skips a block's contents up to its closing brace.
func (p *parser) skip(open Pos) error {
	for {
		st, err := p.next()
		if err == errEnd {
			return nil
		}
		if err == io.EOF {
			return &Error{open, "block is never closed"}
		}
		if st.block {
			if err := p.skip(st.pos); err != nil {
				return err
			}
		}
	}
}

func (p *parser) warn(pos Pos, format string, a ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Diag{pos, fmt.Sprintf(format, a...)})
}

// body runs fn for each statement of a block until its closing brace.
func (p *parser) body(open Pos, fn func(st stmt) error) error {
	for {
		st, err := p.next()
		if err == errEnd {
			return nil
		}
		if err == io.EOF {
			return &Error{open, "block is never closed"}
		}
		if err := fn(st); err != nil {
			return err
		}
	}
}

func (p *parser) top() error {
	for {
		st, err := p.next()
		if err == io.EOF {
			return nil
		}
		if err == errEnd {
			return &Error{st.pos, "unbalanced '}'"}
		}
		switch st.words[0] {
		case "global_defs":
			err = p.globalDefs(st)
		case "virtual_server":
			err = p.virtualServer(st)
		case "vrrp_instance":
			err = p.vrrpInstance(st)
		default:
			p.warn(st.pos, "%s: not supported, ignored", st.words[0])
			if st.block {
				err = p.skip(st.pos)
			}
		}
		if err != nil {
			return err
		}
	}
}

func needBlock(st stmt) error {
	if !st.block {
		return &Error{st.pos, st.words[0] + " needs a { block }"}
	}
	return nil
}

func arg(st stmt, n int) (string, error) {
	if len(st.words) <= n {
		return "", &Error{st.pos, st.words[0] + ": missing argument"}
	}
	return st.words[n], nil
}

func uintArg(st stmt, n, bits int) (uint64, error) {
	s, err := arg(st, n)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, &Error{st.pos, fmt.Sprintf("%s: bad number %q", st.words[0], s)}
	}
	return v, nil
}

func durArg(st stmt, n int) (time.Duration, error) {
	s, err := arg(st, n)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, &Error{st.pos, fmt.Sprintf("%s: bad time %q", st.words[0], s)}
	}
	return time.Duration(f * float64(time.Second)), nil
}

func (p *parser) globalDefs(st stmt) error {
	if err := needBlock(st); err != nil {
		return err
	}
	return p.body(st.pos, func(s stmt) error {
		switch s.words[0] {
		case "router_id":
			v, err := arg(s, 1)
			p.cfg.Global.RouterID = v
			return err
		case "lvs_timeouts":
			// lvs_timeouts tcp N tcpfin N udp N
			for i := 1; i+1 < len(s.words); i += 2 {
				v, err := uintArg(s, i+1, 32)
				if err != nil {
					return err
				}
				switch s.words[i] {
				case "tcp":
					p.cfg.Global.LVSTimeouts.TCP = uint32(v)
				case "tcpfin":
					p.cfg.Global.LVSTimeouts.TCPFin = uint32(v)
				case "udp":
					p.cfg.Global.LVSTimeouts.UDP = uint32(v)
				default:
					return &Error{s.pos, fmt.Sprintf("lvs_timeouts: unknown timeout %q", s.words[i])}
				}
			}
			return nil
		}
		p.warn(s.pos, "global_defs: %s not supported, ignored", s.words[0])
		if s.block {
			return p.skip(s.pos)
		}
		return nil
	})
}

func parseAddrPort(st stmt, i int, portOptional bool) (netip.Addr, uint16, error) {
	s, err := arg(st, i)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, &Error{st.pos, fmt.Sprintf("%s: bad address %q", st.words[0], s)}
	}
	if len(st.words) <= i+1 {
		if portOptional {
			return a, 0, nil
		}
		return netip.Addr{}, 0, &Error{st.pos, st.words[0] + ": missing port"}
	}
	pv, err := strconv.ParseUint(st.words[i+1], 10, 16)
	if err != nil {
		return netip.Addr{}, 0, &Error{st.pos, fmt.Sprintf("%s: bad port %q", st.words[0], st.words[i+1])}
	}
	return a, uint16(pv), nil
}

func (p *parser) virtualServer(st stmt) error {
	if err := needBlock(st); err != nil {
		return err
	}
	vs := VirtualServer{Pos: st.pos, Protocol: "TCP", LBAlgo: "wlc", LBKind: "NAT"}
	if len(st.words) >= 2 && st.words[1] == "fwmark" {
		v, err := uintArg(st, 2, 32)
		if err != nil {
			return err
		}
		vs.FWMark = uint32(v)
	} else if len(st.words) >= 2 && st.words[1] == "group" {
		return &Error{st.pos, "virtual_server group: not supported yet"}
	} else {
		a, port, err := parseAddrPort(st, 1, false)
		if err != nil {
			return err
		}
		vs.Addr, vs.Port = a, port
	}
	err := p.body(st.pos, func(s stmt) error {
		var err error
		switch s.words[0] {
		case "lb_algo", "lvs_sched":
			vs.LBAlgo, err = arg(s, 1)
		case "lb_kind", "lvs_method":
			vs.LBKind, err = arg(s, 1)
			vs.LBKind = strings.ToUpper(vs.LBKind)
		case "protocol":
			vs.Protocol, err = arg(s, 1)
			vs.Protocol = strings.ToUpper(vs.Protocol)
			if err == nil && vs.Protocol != "TCP" && vs.Protocol != "UDP" {
				err = &Error{s.pos, fmt.Sprintf("protocol %s not supported", vs.Protocol)}
			}
		case "persistence_timeout":
			var v uint64
			v, err = uintArg(s, 1, 32)
			vs.PersistenceTimeout = uint32(v)
		case "persistence_granularity":
			var a string
			if a, err = arg(s, 1); err == nil {
				vs.PersistenceGranularity, err = netip.ParseAddr(a)
				if err != nil {
					err = &Error{s.pos, fmt.Sprintf("persistence_granularity: bad netmask %q", a)}
				}
			}
		case "delay_loop":
			vs.DelayLoop, err = durArg(s, 1)
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback", "ops", "flag-1", "flag-2", "flag-3":
			vs.SchedFlags = append(vs.SchedFlags, s.words[0])
		case "real_server":
			err = p.realServer(s, &vs)
		default:
			p.warn(s.pos, "virtual_server: %s not supported, ignored", s.words[0])
			if s.block {
				err = p.skip(s.pos)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	p.cfg.VirtualServers = append(p.cfg.VirtualServers, vs)
	return nil
}

func (p *parser) realServer(st stmt, vs *VirtualServer) error {
	a, port, err := parseAddrPort(st, 1, vs.FWMark != 0)
	if err != nil {
		return err
	}
	rs := RealServer{Pos: st.pos, Addr: a, Port: port, Weight: 1}
	if !st.block {
		p.cfg.Warnings = append(p.cfg.Warnings, Diag{st.pos, "real_server without a block"})
		vs.RealServers = append(vs.RealServers, rs)
		return nil
	}
	err = p.body(st.pos, func(s stmt) error {
		var err error
		switch s.words[0] {
		case "weight":
			var v uint64
			v, err = uintArg(s, 1, 31)
			rs.Weight = int32(v)
		case "lb_kind", "lvs_method":
			var k string
			k, err = arg(s, 1)
			rs.LBKind = strings.ToUpper(k)
		case "uthreshold":
			var v uint64
			v, err = uintArg(s, 1, 32)
			rs.UThreshold = uint32(v)
		case "lthreshold":
			var v uint64
			v, err = uintArg(s, 1, 32)
			rs.LThreshold = uint32(v)
		default:
			p.warn(s.pos, "real_server: %s not supported yet, ignored", s.words[0])
			if s.block {
				err = p.skip(s.pos)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	vs.RealServers = append(vs.RealServers, rs)
	return nil
}

func (p *parser) vrrpInstance(st stmt) error {
	if err := needBlock(st); err != nil {
		return err
	}
	vi := VRRPInstance{Pos: st.pos}
	vi.Name, _ = arg(st, 1)
	err := p.body(st.pos, func(s stmt) error {
		if s.words[0] == "virtual_ipaddress" {
			if !s.block {
				return &Error{s.pos, "virtual_ipaddress needs a { block }"}
			}
			return p.body(s.pos, func(a stmt) error {
				w := a.words[0]
				if !strings.Contains(w, "/") {
					w += "/32"
				}
				pfx, err := netip.ParsePrefix(w)
				if err != nil {
					return &Error{a.pos, fmt.Sprintf("virtual_ipaddress: bad address %q", a.words[0])}
				}
				vi.VirtualIPAddresses = append(vi.VirtualIPAddresses, pfx)
				return nil
			})
		}
		if s.block {
			return p.skip(s.pos)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.cfg.VRRPInstances = append(p.cfg.VRRPInstances, vi)
	return nil
}
