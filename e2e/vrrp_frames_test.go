package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/lab"
	"github.com/uvs-project/uvs/vrrp"
)

// badAdverts builds, from the client's segment, one advert of each kind
// a director must ignore: TTL 254, a broken checksum, an unknown VRID,
// and a wrong password (with priority 200, which would win if it were
// believed).
func badAdverts(t *testing.T, v *vrrpLab) [][]byte {
	t.Helper()
	mac, err := v.topo.Client.MAC(lab.VRRPClientDev)
	if err != nil {
		t.Fatal(err)
	}
	src := [6]byte(mac)
	mk := func(vrid, prio uint8, pass string) []byte {
		a := vrrp.Advert{Version: 2, VRID: vrid, Priority: prio, AdvertInt: time.Second, AuthType: vrrp.AuthPass,
			Addrs: []netip.Addr{v.topo.VIP}}
		copy(a.AuthData[:], pass)
		return vrrp.AppendAdvertFrame(nil, src, vrrp.MulticastMAC, v.topo.ClientIP, vrrp.MulticastGroup, &a)
	}
	ipOf := func(frame []byte) header.IPv4 { return header.IPv4(header.Ethernet(frame).Payload()) }
	ttl := mk(lab.VRRPRouterIDVIP, 200, "secret")
	ip := ipOf(ttl)
	ip.SetTTL(254)
	ip.SetChecksum(ip.CalculateChecksum())
	sum := mk(lab.VRRPRouterIDVIP, 200, "secret")
	ipOf(sum).Payload()[6] ^= 0xff // the VRRP checksum's first byte
	vrid := mk(99, 200, "secret")
	auth := mk(lab.VRRPRouterIDVIP, 200, "wrong")
	return [][]byte{ttl, sum, vrid, auth}
}

// sendFrames sends whole Ethernet frames on dev of the current namespace.
func sendFrames(dev string, frames [][]byte) error {
	ifc, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, f := range frames {
		sa := &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}
		copy(sa.Addr[:], f[:6])
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	return nil
}
