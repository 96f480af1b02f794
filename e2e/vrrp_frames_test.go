package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

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
		a := vrrp.Advert{Version: 2, VRID: vrid, Priority: prio, AdvertInt: 1e9, AuthType: 1,
			Addrs: []netip.Addr{v.topo.VIP}}
		copy(a.AuthData[:], pass)
		return vrrp.AppendAdvertFrame(nil, src, vrrp.MulticastMAC, v.topo.ClientIP, vrrp.MulticastGroup, &a)
	}
	ttl := mk(lab.VRRPRouterIDVIP, 200, "secret")
	ttl[14+8] = 254
	fixIPChecksum(ttl[14:])
	sum := mk(lab.VRRPRouterIDVIP, 200, "secret")
	sum[14+20+6] ^= 0xff
	vrid := mk(99, 200, "secret")
	auth := mk(lab.VRRPRouterIDVIP, 200, "wrong")
	return [][]byte{ttl, sum, vrid, auth}
}

func fixIPChecksum(ip []byte) {
	ip[10], ip[11] = 0, 0
	var s uint32
	for i := 0; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(s))
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
