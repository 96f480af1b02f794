package config

import (
	"encoding/hex"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// schedulers are the lb_algo values: keepalived's list and twos.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

// schedFlags are the virtual_server keywords that set a scheduler flag.
var schedFlags = map[string]bool{
	"flag-1": true, "flag-2": true, "flag-3": true, "sh-port": true, "sh-fallback": true,
	"mh-port": true, "mh-fallback": true, "ops": true,
}

// vsUnsupported are virtual_server keywords uvs does not implement.
var vsUnsupported = map[string]bool{
	"snmp_name": true, "nat_mask": true, "syn_proxy": true,
	"vip_bind_dev": true,
}

// Unset markers while a block is read; validate resolves them.
const (
	unsetDuration time.Duration = -1
	unsetInt      int           = -1
)

// tri is a boolean that may be left out, to inherit.
type tri int8

const (
	triUnset tri = iota
	triFalse
	triTrue
)

func triOf(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

func (t tri) or(b bool) bool {
	if t == triUnset {
		return b
	}
	return t == triTrue
}

// rsLeftOut records what a real_server block left out, for inheritance.
type rsLeftOut struct {
	weight, inhibit, alpha, lbKind bool
	checkerAlpha                   []tri
}

func (p *parser) virtualServer(open stmt) {
	vs := VirtualServer{
		Pos: open.pos, LBAlgo: "", LBKind: "",
		DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second,
		Retry: unsetInt, DelayBeforeRetry: unsetDuration, Warmup: unsetDuration,
		Quorum: 1, Weight: 1,
	}
	switch {
	case len(open.words) < 2:
		p.fail(open.pos, "virtual_server: missing address")
	case open.words[1] == "fwmark":
		vs.FWMark = uint32(p.uint(open, 2, 1, math.MaxUint32))
		p.extra(open, 2)
	case open.words[1] == "group":
		vs.Group = p.str(open, 2)
		p.extra(open, 2)
	default:
		vs.Addr, vs.Port = p.addrPort(open, 1)
		p.extra(open, 2)
	}
	if p.err != nil || !p.needBlock(open) {
		return
	}
	protoSet := false
	var left []rsLeftOut
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "real_server":
			rs, lo := p.realServer(s)
			vs.RealServers = append(vs.RealServers, rs)
			left = append(left, lo)
			return
		case "lb_algo", "lvs_sched":
			vs.LBAlgo = p.str(s, 1)
			if p.err == nil && !slices.Contains(schedulers, vs.LBAlgo) {
				p.fail(s.pos, "%s: unknown scheduler %q", kw, vs.LBAlgo)
			}
		case "lb_kind", "lvs_method":
			vs.LBKind, vs.Tunnel = p.lbKind(s)
		case "protocol":
			vs.Protocol, protoSet = strings.ToUpper(p.str(s, 1)), true
			switch vs.Protocol {
			case "TCP", "UDP", "SCTP":
			case "":
			default:
				p.fail(s.pos, "protocol: unknown protocol %q (want TCP, UDP or SCTP)", s.words[1])
			}
		case "ip_family":
			vs.IPFamily = p.str(s, 1)
			if p.err == nil && vs.IPFamily != "inet" && vs.IPFamily != "inet6" {
				p.fail(s.pos, "ip_family: unknown family %q (want inet or inet6)", vs.IPFamily)
			}
		case "persistence_timeout":
			if len(s.words) < 2 {
				vs.PersistenceTimeout = 360
			} else {
				vs.PersistenceTimeout = uint32(p.uint(s, 1, 1, lvsMaxTimeout))
			}
		case "persistence_granularity":
			vs.PersistenceGranularity = p.granularity(s, vs.Addr.Is6() || vs.IPFamily == "inet6")
			if vs.PersistenceTimeout == 0 {
				vs.PersistenceTimeout = 360
			}
		case "persistence_engine":
			vs.PersistenceEngine = p.str(s, 1)
		case "delay_loop":
			vs.DelayLoop = p.positiveTimer(s)
		case "connect_timeout":
			vs.ConnectTimeout = p.positiveTimer(s)
		case "retry":
			vs.Retry = int(p.uint(s, 1, 1, math.MaxInt32))
		case "delay_before_retry":
			vs.DelayBeforeRetry = p.timer(s, 1)
		case "warmup":
			vs.Warmup = p.timer(s, 1)
		case "quorum":
			vs.Quorum = uint32(p.uint(s, 1, 1, math.MaxUint32))
		case "hysteresis":
			vs.Hysteresis = uint32(p.uint(s, 1, 0, math.MaxUint32))
		case "quorum_up":
			vs.QuorumUp = p.rest(s, 1)
		case "quorum_down":
			vs.QuorumDown = p.rest(s, 1)
		case "alpha":
			vs.Alpha = true
		case "omega":
			vs.Omega = true
		case "inhibit_on_failure":
			vs.InhibitOnFailure = p.boolArg(s, 1)
		case "ha_suspend":
			vs.HASuspend = true
		case "virtualhost":
			vs.Virtualhost = p.str(s, 1)
		case "weight":
			vs.Weight = int32(p.uint(s, 1, 0, 65535))
		case "sorry_server":
			ss := &SorryServer{Pos: s.pos}
			ss.Addr, ss.Port = p.addrPort(s, 1)
			if vs.SorryServer != nil {
				p.warn(s.pos, "sorry_server: already set at %s, replaced", vs.SorryServer.Pos)
				ss.Inhibit, ss.LBKind, ss.Tunnel = vs.SorryServer.Inhibit, vs.SorryServer.LBKind, vs.SorryServer.Tunnel
			}
			vs.SorryServer = ss
		case "sorry_server_inhibit":
			if vs.SorryServer == nil {
				p.warn(s.pos, "sorry_server_inhibit before or without sorry_server, ignored")
			} else {
				vs.SorryServer.Inhibit = true
			}
		case "sorry_server_lvs_method", "sorry_server_lb_kind":
			k, t := p.lbKind(s)
			if vs.SorryServer == nil {
				p.warn(s.pos, "%s before or without sorry_server, ignored", kw)
			} else {
				vs.SorryServer.LBKind, vs.SorryServer.Tunnel = k, t
			}
		case "laddr_group_name":
			vs.LAddrGroup = p.str(s, 1)
		case "hashed":
			p.warn(s.pos, "virtual_server: hashed is obsolete, ignored")
		case "smtp_alert":
			p.warn(s.pos, "virtual_server: smtp_alert ignored: uvs sends no email")
		default:
			switch {
			case schedFlags[kw]:
				if !slices.Contains(vs.SchedFlags, kw) {
					vs.SchedFlags = append(vs.SchedFlags, kw)
				}
			case p.misplaced(s):
			case vsUnsupported[kw]:
				p.unsupported(s, "virtual_server")
				return
			default:
				p.unknown(s, "virtual_server")
				return
			}
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return
	}
	p.finishVS(&vs, protoSet, left)
	p.cfg.VirtualServers = append(p.cfg.VirtualServers, vs)
}

// positiveTimer is argument 1 of s as a timer above zero.
func (p *parser) positiveTimer(s stmt) time.Duration {
	d := p.timer(s, 1)
	if p.err == nil && d <= 0 {
		p.fail(s.pos, "%s: must be above 0", s.kw())
	}
	return d
}

// lbKind reads lb_kind/lvs_method NAT|DR|TUN [type ipip|gue port N|gre]
// [nocsum|csum|remcsum], or uvs's FNAT (FULLNAT).
func (p *parser) lbKind(s stmt) (string, Tunnel) {
	k := strings.ToUpper(p.str(s, 1))
	switch k {
	case "FULLNAT":
		k = "FNAT"
	case "NAT", "DR", "FNAT":
	case "TUN":
		return k, p.tunnel(s)
	default:
		if p.err == nil {
			p.fail(s.pos, "%s: unknown forwarding method %q (want NAT, DR, TUN or FNAT)", s.kw(), s.words[1])
		}
		return "", Tunnel{}
	}
	p.extra(s, 1)
	return k, Tunnel{}
}

func (p *parser) tunnel(s stmt) Tunnel {
	t := Tunnel{Type: "ipip", Csum: "nocsum"}
	for i := 2; i < len(s.words) && p.err == nil; i++ {
		switch w := s.words[i]; w {
		case "type":
			t.Type = p.str(s, i+1)
			i++
			if p.err == nil && t.Type != "ipip" && t.Type != "gue" && t.Type != "gre" {
				p.fail(s.pos, "%s: unknown tunnel type %q (want ipip, gue or gre)", s.kw(), t.Type)
			}
		case "port":
			t.Port = p.port(s, i+1)
			i++
		case "nocsum", "csum", "remcsum":
			t.Csum = w
		default:
			p.fail(s.pos, "%s: unknown tunnel option %q", s.kw(), w)
		}
	}
	switch {
	case p.err != nil:
	case (t.Type == "gue") != (t.Port != 0):
		p.fail(s.pos, "%s: a gue tunnel needs a port, other tunnels have none", s.kw())
	case t.Type == "ipip" && t.Csum != "nocsum":
		p.fail(s.pos, "%s: ipip tunnels have no checksum option", s.kw())
	case t.Type == "gre" && t.Csum == "remcsum":
		p.fail(s.pos, "%s: gre tunnels have no remote checksum option", s.kw())
	}
	return t
}

// granularity reads persistence_granularity: an IPv4 netmask, or prefix
// bits (IPv6, or IPv4 as uvs also accepts).
func (p *parser) granularity(s stmt, v6 bool) int {
	a := p.str(s, 1)
	if p.err != nil {
		return 0
	}
	if strings.Contains(a, ".") {
		m, err := netip.ParseAddr(a)
		if err != nil || !m.Is4() || v6 {
			p.fail(s.pos, "persistence_granularity: bad IPv4 netmask %q", a)
			return 0
		}
		b := m.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		bits := 0
		for v&0x80000000 != 0 {
			bits++
			v <<= 1
		}
		if v != 0 || bits == 0 {
			p.fail(s.pos, "persistence_granularity: netmask %s is not contiguous", a)
			return 0
		}
		return bits
	}
	hi := uint64(128)
	if !v6 {
		hi = 32
	}
	return int(p.uint(s, 1, 1, hi))
}

// realServer reads real_server <IPADDR> [<PORT>] { ... }.
func (p *parser) realServer(open stmt) (RealServer, rsLeftOut) {
	rs := RealServer{
		Pos: open.pos, DelayLoop: unsetDuration, ConnectTimeout: unsetDuration,
		Retry: unsetInt, DelayBeforeRetry: unsetDuration, Warmup: unsetDuration,
	}
	lo := rsLeftOut{weight: true, inhibit: true, alpha: true, lbKind: true}
	rs.Addr, rs.Port = p.addrPort(open, 1)
	p.extra(open, 2)
	// A real_server needs its block, even an empty one: without it
	// keepalived reports "Missing '{' at beginning of configuration
	// block" (keepalived -t fails) and reads the rest of the
	// virtual_server as the real server's block.
	if p.err != nil || !p.needBlock(open) {
		return rs, lo
	}
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK":
			c, alpha := p.checker(s)
			rs.Checkers = append(rs.Checkers, c)
			lo.checkerAlpha = append(lo.checkerAlpha, alpha)
			return
		case "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK":
			p.unsupported(s, "real_server")
			return
		case "weight":
			rs.Weight, lo.weight = int32(p.uint(s, 1, 0, 65535)), false
		case "lb_kind", "lvs_method":
			rs.LBKind, rs.Tunnel = p.lbKind(s)
			lo.lbKind = false
		case "uthreshold":
			rs.UThreshold = uint32(p.uint(s, 1, 0, math.MaxUint32))
		case "lthreshold":
			rs.LThreshold = uint32(p.uint(s, 1, 0, math.MaxUint32))
		case "inhibit_on_failure":
			rs.InhibitOnFailure, lo.inhibit = p.boolArg(s, 1), false
		case "alpha":
			rs.Alpha, lo.alpha = p.boolArg(s, 1), false
		case "notify_up":
			rs.NotifyUp = p.rest(s, 1)
		case "notify_down":
			rs.NotifyDown = p.rest(s, 1)
		case "virtualhost":
			rs.Virtualhost = p.str(s, 1)
		case "delay_loop":
			rs.DelayLoop = p.positiveTimer(s)
		case "connect_timeout":
			rs.ConnectTimeout = p.positiveTimer(s)
		case "retry":
			rs.Retry = int(p.uint(s, 1, 1, math.MaxInt32))
		case "delay_before_retry":
			rs.DelayBeforeRetry = p.timer(s, 1)
		case "warmup":
			rs.Warmup = p.timer(s, 1)
		case "smtp_alert":
			p.warn(s.pos, "real_server: smtp_alert ignored: uvs sends no email")
		case "snmp_name":
			p.unsupported(s, "real_server")
			return
		default:
			if p.misplaced(s) {
				return
			}
			p.unknown(s, "real_server")
			return
		}
		p.noBlock(s)
	})
	return rs, lo
}

// checker reads a TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK block.
func (p *parser) checker(open stmt) (Checker, tri) {
	c := Checker{
		Pos: open.pos, Kind: open.kw(),
		ConnectTimeout: unsetDuration, Retry: unsetInt, DelayBeforeRetry: unsetDuration,
		DelayLoop: unsetDuration, Warmup: unsetDuration,
	}
	alpha := triUnset
	p.extra(open, 0)
	if !p.needBlock(open) {
		return c, alpha
	}
	web := c.Kind == "HTTP_GET" || c.Kind == "SSL_GET"
	p.body(open, func(s stmt) {
		switch kw := s.kw(); {
		case kw == "connect_ip":
			c.ConnectIP = p.addr(s, 1)
		case kw == "connect_port":
			c.ConnectPort = p.port(s, 1)
		case kw == "bindto":
			c.BindTo = p.addr(s, 1)
		case kw == "bind_port":
			c.BindPort = p.port(s, 1)
		case kw == "bind_if":
			c.BindIf = p.str(s, 1)
		case kw == "fwmark":
			c.FWMark = uint32(p.uint(s, 1, 0, math.MaxUint32))
		case kw == "connect_timeout":
			c.ConnectTimeout = p.positiveTimer(s)
		case kw == "retry", kw == "nb_get_retry":
			c.Retry = int(p.uint(s, 1, 0, math.MaxInt32))
		case kw == "delay_before_retry":
			c.DelayBeforeRetry = p.timer(s, 1)
		case kw == "delay_loop":
			c.DelayLoop = p.positiveTimer(s)
		case kw == "warmup":
			c.Warmup = p.timer(s, 1)
		case kw == "alpha":
			alpha = triOf(p.boolArg(s, 1))
		case kw == "log_all_failures":
			p.unsupported(s, open.kw())
			return
		case web && kw == "url":
			p.url(s, &c)
			return
		case web && kw == "http_protocol":
			c.HTTPProtocol = p.str(s, 1)
			switch c.HTTPProtocol {
			case "1.0", "1.0C", "1.1":
			default:
				p.fail(s.pos, "http_protocol: unknown version %q (want 1.0, 1.0C or 1.1)", c.HTTPProtocol)
			}
		case web && kw == "fast_recovery":
			c.FastRecovery = p.boolArg(s, 1)
		case web && kw == "virtualhost":
			c.Virtualhost = p.str(s, 1)
		case c.Kind == "SSL_GET" && kw == "enable_sni":
			c.EnableSNI = true
		case c.Kind == "SSL_GET" && kw == "sni_name":
			c.SNIName = p.str(s, 1)
		case c.Kind == "SSL_GET" && kw == "tls_compliant":
			p.unsupported(s, open.kw())
			return
		case c.Kind == "MISC_CHECK" && kw == "misc_path":
			c.MiscPath = p.rest(s, 1)
		case c.Kind == "MISC_CHECK" && kw == "misc_timeout":
			c.MiscTimeout = p.positiveTimer(s)
		case c.Kind == "MISC_CHECK" && kw == "misc_dynamic":
			c.MiscDynamic = true
		case c.Kind == "MISC_CHECK" && kw == "user":
			c.User = p.rest(s, 1)
		default:
			if p.misplaced(s) {
				return
			}
			p.unknown(s, open.kw())
			return
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return c, alpha
	}
	switch {
	case web && len(c.URLs) == 0:
		p.fail(open.pos, "%s: no url block", c.Kind)
	case c.Kind == "MISC_CHECK" && c.MiscPath == "":
		p.fail(open.pos, "MISC_CHECK: missing misc_path")
	}
	return c, alpha
}

// url reads an url block of HTTP_GET or SSL_GET.
func (p *parser) url(open stmt, c *Checker) {
	if !p.needBlock(open) {
		return
	}
	u := URL{Pos: open.pos}
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "path":
			u.Path = p.str(s, 1)
		case "digest":
			u.Digest = strings.ToLower(p.str(s, 1))
			if b, err := hex.DecodeString(u.Digest); p.err == nil && (err != nil || len(b) != 16) {
				p.fail(s.pos, "digest: %q is not an MD5 digest (32 hex digits)", s.words[1])
			}
		case "status_code":
			for i := 1; i < len(s.words) && p.err == nil; i++ {
				u.StatusCodes = append(u.StatusCodes, p.codeRange(s, i))
			}
			if len(s.words) < 2 {
				p.fail(s.pos, "status_code: missing argument")
			}
		case "virtualhost":
			u.Virtualhost = p.str(s, 1)
		case "regex":
			u.Regex = p.str(s, 1)
		case "regex_no_match":
			u.RegexNoMatch = true
		case "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset", "tls_compliant":
			p.unsupported(s, "url")
			return
		default:
			p.unknown(s, "url")
			return
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return
	}
	if u.Path == "" {
		p.fail(open.pos, "url: missing path")
		return
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []CodeRange{{200, 299}}
	}
	c.URLs = append(c.URLs, u)
}

// codeRange reads an HTTP status code or range, 100-599.
func (p *parser) codeRange(s stmt, i int) CodeRange {
	w := s.words[i]
	lo, hi, isRange := strings.Cut(w, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
		p.fail(s.pos, "status_code: bad code or range %q (want 100-599)", w)
		return CodeRange{}
	}
	return CodeRange{uint16(a), uint16(b)}
}

// virtualServerGroup reads virtual_server_group NAME { entries }.
func (p *parser) virtualServerGroup(open stmt) {
	name := p.str(open, 1)
	p.extra(open, 1)
	if p.err != nil || !p.needBlock(open) {
		return
	}
	g := VirtualServerGroup{Pos: open.pos, Name: name}
	p.entries(open, func(s stmt) {
		e := VSGEntry{Pos: s.pos}
		if s.kw() == "fwmark" {
			e.FWMark = uint32(p.uint(s, 1, 1, math.MaxUint32))
			if len(s.words) > 2 {
				e.Family = s.words[2]
				if e.Family != "inet" && e.Family != "inet6" {
					p.fail(s.pos, "fwmark: unknown family %q (want inet or inet6)", e.Family)
				}
			}
			p.extra(s, 2)
			g.Entries = append(g.Entries, e)
			return
		}
		var ok bool
		e.First, e.Last, ok = parseRange(s.kw())
		if !ok {
			p.fail(s.pos, "virtual_server_group %s: bad address or range %q", name, s.kw())
			return
		}
		if len(s.words) > 1 {
			e.Port = uint16(p.uint(s, 1, 0, 65535))
		}
		p.extra(s, 1)
		g.Entries = append(g.Entries, e)
	})
	if p.err != nil {
		return
	}
	if prev, dup := p.cfg.VirtualServerGroups[name]; dup {
		p.fail(open.pos, "virtual_server_group %s: already defined at %s", name, prev.Pos)
		return
	}
	if len(g.Entries) == 0 {
		p.warn(open.pos, "virtual_server_group %s has no entries, ignored", name)
		return
	}
	p.cfg.VirtualServerGroups[name] = g
}

// maxRange bounds the addresses of one range of a virtual_server_group.
const maxRange = 65536

// parseRange parses an address range of a virtual_server_group:
// 10.0.0.1, 10.0.0.1-10 (last byte, or last 16-bit group in hex for
// IPv6), 10.0.0.250-10.0.1.10, or 10.0.0.8/29.
func parseRange(w string) (first, last netip.Addr, ok bool) {
	if pfx, err := netip.ParsePrefix(w); err == nil {
		pfx = pfx.Masked()
		first = pfx.Addr().Unmap()
		host := first.BitLen() - pfx.Bits()
		if host > 16 {
			return first, first, false
		}
		last = first
		for range (1 << host) - 1 {
			last = last.Next()
		}
		return first, last, true
	}
	lo, hi, isRange := strings.Cut(w, "-")
	a, err := netip.ParseAddr(lo)
	if err != nil || a.Zone() != "" {
		return first, last, false
	}
	a = a.Unmap()
	if !isRange {
		return a, a, true
	}
	b, err := netip.ParseAddr(hi)
	if err != nil {
		// Only the last byte (IPv4) or 16-bit group (IPv6) is given.
		var n uint64
		if a.Is4() {
			n, err = strconv.ParseUint(hi, 10, 8)
		} else {
			n, err = strconv.ParseUint(hi, 16, 16)
		}
		if err != nil {
			return first, last, false
		}
		bs := a.As16()
		if a.Is4() {
			bs[15] = byte(n)
		} else {
			bs[14], bs[15] = byte(n>>8), byte(n)
		}
		b = netip.AddrFrom16(bs)
		if a.Is4() {
			b = b.Unmap()
		}
	}
	b = b.Unmap()
	if a.Is4() != b.Is4() || b.Less(a) || rangeSize(a, b) > maxRange {
		return first, last, false
	}
	return a, b, true
}

// rangeSize counts the addresses of [a, b], saturating past maxRange.
func rangeSize(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := 0; i < 12; i++ {
		if x[i] != y[i] {
			return maxRange + 1
		}
	}
	hi := uint64(y[12])<<24 | uint64(y[13])<<16 | uint64(y[14])<<8 | uint64(y[15])
	lo := uint64(x[12])<<24 | uint64(x[13])<<16 | uint64(x[14])<<8 | uint64(x[15])
	return int(min(hi-lo+1, maxRange+1))
}
