package connsync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// ListenMulticast opens the socket a director syncs through: bound to
// group:port, a member of group on ifname, and sending to the group out of
// ifname with the given TTL (≤ 0 means 1, so sync stays on the link, as
// IPVS's does). Use it as both the Sender's Conn (with Dst group:port) and
// the Receiver's.
//
// Binding to the group address rather than the wildcard keeps unicast and
// other groups' traffic to the port away from the socket. IP_MULTICAST_ALL
// is turned off so that the socket hears the group only on the interface
// it joined, not wherever another socket on the host joined it. Multicast
// loopback is off so a director does not read back its own datagrams.
// SO_REUSEADDR lets a restarting daemon bind while the old socket lingers.
func ListenMulticast(ifname string, group netip.Addr, port uint16, ttl int) (*net.UDPConn, error) {
	if !group.Is4() || !group.IsMulticast() {
		return nil, fmt.Errorf("connsync: multicast group got %v, want an IPv4 multicast address", group)
	}
	if ttl <= 0 {
		ttl = 1
	}
	if ttl > 255 {
		return nil, fmt.Errorf("connsync: multicast TTL got %d, want 1..255", ttl)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("connsync: multicast interface %q: %w", ifname, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	laddr := netip.AddrPortFrom(group, port)
	pc, err := lc.ListenPacket(context.Background(), "udp4", laddr.String())
	if err != nil {
		return nil, fmt.Errorf("connsync: listen %v: %w", laddr, err)
	}
	c := pc.(*net.UDPConn)
	p := ipv4.NewPacketConn(c)
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"join group", func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}) }},
		{"set multicast interface", func() error { return p.SetMulticastInterface(ifi) }},
		{"set multicast TTL", func() error { return p.SetMulticastTTL(ttl) }},
		{"disable multicast loopback", func() error { return p.SetMulticastLoopback(false) }},
	} {
		if err := step.do(); err != nil {
			c.Close()
			return nil, fmt.Errorf("connsync: %s (%v on %s): %w", step.what, group, ifname, err)
		}
	}
	return c, nil
}
