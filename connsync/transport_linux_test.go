package connsync

import (
	"net/netip"
	"testing"
)

// Joining a group would change the host's interfaces, so only the checks
// that fail before a socket exists run here; the namespace end-to-end
// tests exercise ListenMulticast itself.
func TestListenMulticastArgs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ifname string
		group  netip.Addr
		ttl    int
	}{
		{"unicast group", "lo", netip.MustParseAddr("10.0.0.1"), 1},
		{"ipv6 group", "lo", netip.MustParseAddr("ff02::1"), 1},
		{"zero group", "lo", netip.Addr{}, 1},
		{"ttl", "lo", DefaultGroup, 256},
		{"no such interface", "uvs-nonexistent0", DefaultGroup, 1},
	} {
		if c, err := ListenMulticast(tc.ifname, tc.group, DefaultPort, tc.ttl); err == nil {
			c.Close()
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
