package connsync

import (
	"fmt"
	"net"
	"net/netip"
)

// DefaultGroup is the multicast group IPVS's sync daemon uses, and so
// the one ListenMulticast's callers use unless configured otherwise.
var DefaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})

// DefaultPort is IPVS's sync port.
const DefaultPort = 8848

// ListenUnicast opens a UDP socket on laddr for a director pair that
// syncs over unicast: the Sender's Dst is then the peer's address, and
// the same socket serves the Receiver.
func ListenUnicast(laddr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if laddr.Addr().Is6() && !laddr.Addr().Is4In6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, fmt.Errorf("connsync: listen %v: %w", laddr, err)
	}
	return c, nil
}
