package ipvsadm

import (
	"math/bits"
	"net/netip"
	"strings"
)

// parseService is ipvsadm's parse_service without host name lookups:
// "addr", "addr:port", "[v6]:port" or a bare IPv6 address, the port a
// number or a service name for proto ("tcp", "udp"). ok is false where
// ipvsadm returns SERVICE_NONE.
func parseService(buf, proto string) (addr netip.Addr, port uint16, hasPort, ok bool) {
	if strIsDigit(buf) {
		return netip.Addr{}, 0, false, false
	}
	host, portStr := buf, ""
	hasPort = false
	if buf[0] == '[' {
		end := strings.IndexByte(buf, ']')
		if end < 0 {
			return netip.Addr{}, 0, false, false
		}
		if !strings.HasPrefix(buf[end+1:], ":") {
			return netip.Addr{}, 0, false, false
		}
		host, portStr, hasPort = buf[1:end], buf[end+2:], true
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && a.Zone() == "" {
		addr = a
	} else {
		// IPv4: the port follows the last ':' of what is left; in the
		// bracketed form that drops the port, as ipvsadm does.
		hasPort = false
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, portStr, hasPort = host[:i], host[i+1:], true
		}
		v4, ok := inetAton(host)
		if !ok {
			return netip.Addr{}, 0, false, false
		}
		addr = v4
	}
	if hasPort {
		if n, ok := stringToNumber(portStr, 0, 65535); ok {
			port = uint16(n)
		} else if n, ok := serviceToPort(portStr, proto); ok {
			port = n
		} else {
			return netip.Addr{}, 0, false, false
		}
	}
	return addr, port, hasPort, true
}

// strIsDigit is ipvsadm's str_is_digit: true for "" too.
func strIsDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// inetAton is glibc's inet_aton: one to four parts separated by dots,
// each decimal, octal (leading 0) or hex (0x), the last part filling
// the remaining bytes; anything after a blank is ignored.
func inetAton(s string) (netip.Addr, bool) {
	var parts [4]uint32
	n := 0
	i := 0
	var val uint64
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		base := uint64(10)
		if s[i] == '0' {
			base = 8
			if i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
				// strtoul takes "0x" only when a hex digit follows.
				if i+2 < len(s) && hexVal(s[i+2]) >= 0 {
					base = 16
					i += 2
				}
			}
		}
		val = 0
		for i < len(s) {
			d := hexVal(s[i])
			if d < 0 || uint64(d) >= base {
				break
			}
			val = val*base + uint64(d)
			if val > 0xffffffff {
				return netip.Addr{}, false
			}
			i++
		}
		if i < len(s) && s[i] == '.' {
			if n > 2 || val > 0xff {
				return netip.Addr{}, false
			}
			parts[n] = uint32(val)
			n++
			i++
			continue
		}
		break
	}
	if i < len(s) && !isSpace(s[i]) {
		return netip.Addr{}, false
	}
	limit := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}[n]
	if val > limit {
		return netip.Addr{}, false
	}
	v := uint32(val)
	for k := 0; k < n; k++ {
		v |= parts[k] << (24 - 8*k)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// strtol is C's strtol in base 10 on a whole string: leading blanks, a
// sign, at least one digit, nothing after. ok is false on overflow of
// a 64-bit long too.
func strtol(s string) (int64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v uint64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + uint64(s[i]-'0')
		if v > 1<<63 {
			return 0, false
		}
		i++
	}
	if i == start || i != len(s) {
		return 0, false
	}
	if neg {
		return -int64(v), true // -(1<<63) wraps to itself: LONG_MIN
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// stringToNumber is ipvsadm's string_to_number.
func stringToNumber(s string, lo, hi int64) (int64, bool) {
	n, ok := strtol(s)
	if !ok || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// parseFWMark is ipvsadm's parse_fwmark: 1 to 2^32-1.
func parseFWMark(s string) (uint32, bool) {
	n, ok := strtol(s)
	if !ok || n <= 0 || n > uintMax {
		return 0, false
	}
	return uint32(n), true
}

// atoi is C's atoi, saturated instead of undefined on overflow.
func atoi(s string) int {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	v := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if v < 1<<31 {
			v = v*10 + int(s[i]-'0')
		}
		i++
	}
	if neg {
		return -v
	}
	return v
}

// parseNetmask reads an IPv4 persistence mask as ipvsadm does (any
// inet_aton form) and returns its prefix length; the mask must be
// contiguous, as uvs keeps a prefix length.
func parseNetmask(s string) (int, bool) {
	a, ok := inetAton(s)
	if !ok {
		return 0, false
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := bits.LeadingZeros32(^m)
	if m != ^uint32(0)<<(32-ones) {
		return 0, false
	}
	return ones, true
}

// maskString is inet_ntoa of a prefix length's mask.
func maskString(bits int) string {
	if bits < 0 {
		bits = 0
	}
	if bits > 32 {
		bits = 32
	}
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}
