package nexthop

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// Hop is the result of a resolution.
type Hop struct {
	Ifindex int
	IfName  string
	IfMAC   net.HardwareAddr
	IfMTU   int
	Gateway netip.Addr // the address whose MAC was resolved (dst itself when on-link)
	Src     netip.Addr // the route's preferred source: the director's address towards dst
	MAC     net.HardwareAddr
}

// ErrUnresolved is returned when neither the neighbour table nor ARP gave
// a MAC in time.
var ErrUnresolved = errors.New("next hop unresolved")

// Route returns the egress interface and the gateway for dst, without
// resolving a MAC.
func Route(dst netip.Addr) (Hop, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return Hop{}, fmt.Errorf("route to %v: %w", dst, err)
	}
	if len(routes) == 0 {
		return Hop{}, fmt.Errorf("route to %v: none", dst)
	}
	r := routes[0]
	link, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return Hop{}, fmt.Errorf("route to %v: link %d: %w", dst, r.LinkIndex, err)
	}
	h := Hop{Ifindex: r.LinkIndex, IfName: link.Attrs().Name, IfMAC: link.Attrs().HardwareAddr, IfMTU: link.Attrs().MTU, Gateway: dst}
	if src, ok := netip.AddrFromSlice(r.Src); ok {
		h.Src = src.Unmap()
	}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.IsValid() && !gw.IsUnspecified() {
		h.Gateway = gw.Unmap()
	}
	return h, nil
}

// usable neighbour states: the kernel has a MAC it would use.
const usable = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// Resolve finds the interface and next-hop MAC for dst: route, then the
// neighbour table, then ARP on the egress interface (waiting at most
// timeout).
func Resolve(dst netip.Addr, timeout time.Duration) (Hop, error) {
	h, err := Route(dst)
	if err != nil {
		return h, err
	}
	neighs, err := netlink.NeighList(h.Ifindex, netlink.FAMILY_V4)
	if err == nil {
		for _, n := range neighs {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == h.Gateway && n.State&usable != 0 && len(n.HardwareAddr) == 6 {
				h.MAC = n.HardwareAddr
				return h, nil
			}
		}
	}
	ifi, err := net.InterfaceByIndex(h.Ifindex)
	if err != nil {
		return h, fmt.Errorf("resolve %v: %w", dst, err)
	}
	c, err := arp.Dial(ifi)
	if err != nil {
		return h, fmt.Errorf("resolve %v: arp on %s: %w", dst, ifi.Name, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return h, fmt.Errorf("resolve %v: %w", dst, err)
	}
	mac, err := c.Resolve(h.Gateway)
	if err != nil {
		return h, fmt.Errorf("resolve %v via %v on %s: %w: %w", dst, h.Gateway, ifi.Name, ErrUnresolved, err)
	}
	h.MAC = mac
	return h, nil
}
