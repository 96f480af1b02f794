package dataplane

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/lab"
	"github.com/uvs-project/uvs/service"
)

var (
	dirIP  = netip.MustParseAddr("198.19.0.1") // the director's own address
	drVIP  = netip.MustParseAddrPort("198.18.0.101:80")
	drRS   = netip.MustParseAddr("198.19.0.21")
	fnatIP = netip.MustParseAddr("198.19.0.250") // a FULLNAT local address
	stbyIP = netip.MustParseAddr("198.18.0.102") // held by a backup instance
)

// xdpTestSnapshot has a NAT TCP service (vip → rip1, rip2 :8080), a DR
// service (drVIP → drRS) with a FULLNAT local address, and a standby
// address.
func xdpTestSnapshot(tb testing.TB) *service.Snapshot {
	tb.Helper()
	m := service.NewModel()
	nat := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
	dr := service.Key{Proto: 6, Addr: drVIP.Addr().As4(), Port: drVIP.Port()}
	for _, k := range []service.Key{nat, dr} {
		if err := m.AddService(service.ServiceConfig{Key: k, Sched: "rr"}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, r := range []netip.Addr{rip1, rip2} {
		if err := m.AddDest(nat, service.DestConfig{Addr: r.As4(), Port: 8080, Weight: 1}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := m.AddDest(dr, service.DestConfig{Addr: drRS.As4(), Port: 80, Fwd: service.FwdRoute, Weight: 1}); err != nil {
		tb.Fatal(err)
	}
	if err := m.SetLocalAddrs(dr, [][4]byte{fnatIP.As4()}); err != nil {
		tb.Fatal(err)
	}
	m.SetOwned([][4]byte{stbyIP.As4()})
	m.SetStandby([][4]byte{stbyIP.As4()}, true)
	return m.Snapshot()
}

func TestXDPWant(t *testing.T) {
	s := xdpTestSnapshot(t)
	// The host claims the VIP too (a director that is a real server):
	// uvs's claim wins.
	got := xdpWant(s, [][4]byte{dirIP.As4(), vip.Addr().As4()})
	want := map[xdpKey]uint8{
		dstKey(dirIP.As4()):         xdpActPass,
		dstKey(vip.Addr().As4()):    xdpActRedirect,
		dstKey(drVIP.Addr().As4()):  xdpActRedirect,
		dstKey(fnatIP.As4()):        xdpActRedirect,
		dstKey(stbyIP.As4()):        xdpActRedirect,
		srcKey(rip1.As4(), 8080, 6): xdpActRedirect,
		srcKey(rip2.As4(), 8080, 6): xdpActRedirect,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("xdpWant:\n got %v\nwant %v", got, want)
	}
}

// TestPrivilegedXDPVerdicts runs the redirect program over frames with
// BPF_PROG_TEST_RUN. A device map stands in for the socket map (an XSKMAP
// entry needs a bound AF_XDP socket): with loopback in slot 0, a redirect
// is seen as XDP_REDIRECT and nothing is sent.
func TestPrivilegedXDPVerdicts(t *testing.T) {
	lab.RequireRoot(t)
	match, err := newXDPMatch()
	if err != nil {
		t.Fatal(err)
	}
	defer match.m.Close()
	if err := match.apply(xdpWant(xdpTestSnapshot(t), [][4]byte{dirIP.As4()})); err != nil {
		t.Fatal(err)
	}
	dev, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Put(uint32(0), uint32(1)); err != nil {
		t.Fatal(err)
	}
	const maxLen = 3798
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Flags: unix.BPF_F_XDP_HAS_FRAGS,
		Instructions: xdpProgram(match.m, dev, maxLen)})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer prog.Close()

	const redirect, pass = 4, xdpPass
	bcast := [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	rs1 := netip.AddrPortFrom(rip1, 8080)
	withOptions := func(f []byte) []byte {
		// IHL 6: four bytes of options (NOPs) after the fixed header.
		ip := f[vnetHdrLen+14:]
		out := append([]byte{}, f[:vnetHdrLen+14]...)
		out = append(out, ip[:20]...)
		out = append(out, 1, 1, 1, 1)
		out = append(out, ip[20:]...)
		out[vnetHdrLen+14] = 0x46
		return out
	}
	cases := []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"client to the VIP", tcpFrame(t, cip, vip, d0MAC, true, false, 0), redirect},
		{"client to a DR VIP", tcpFrame(t, cip, drVIP, d0MAC, true, false, 0), redirect},
		{"ping to a FULLNAT local address", icmpFrame(t, cip.Addr(), fnatIP, d1MAC, 8, 0, make([]byte, 8)), redirect},
		{"client to a standby address", udpFrame(t, cip, netip.AddrPortFrom(stbyIP, 53), d0MAC, 8), redirect},
		{"NAT reply to the client", tcpFrame(t, rs1, cip, d1MAC, true, true, 0), redirect},
		{"health check reply to the director", tcpFrame(t, rs1, netip.AddrPortFrom(dirIP, 40000), d1MAC, true, true, 0), pass},
		{"real server, other port", tcpFrame(t, netip.AddrPortFrom(rip1, 22), cip, d1MAC, false, true, 0), pass},
		{"real server, other protocol", udpFrame(t, rs1, cip, d1MAC, 8), pass},
		{"DR real server's own traffic", tcpFrame(t, netip.AddrPortFrom(drRS, 80), cip, d1MAC, false, true, 0), pass},
		{"broadcast to the VIP", tcpFrame(t, cip, vip, bcast, true, false, 0), pass},
		{"VIP with IP options", withOptions(tcpFrame(t, cip, vip, d0MAC, true, false, 0)), redirect},
		{"NAT reply with IP options", withOptions(tcpFrame(t, rs1, cip, d1MAC, true, true, 0)), pass},
		{"short frame", tcpFrame(t, cip, vip, d0MAC, true, false, 0)[:vnetHdrLen+30], pass},
		{"client to the VIP, too long for a chunk", tcpFrame(t, cip, vip, d0MAC, false, true, maxLen-54+1), pass},
		{"client to the VIP, as long as a chunk holds", tcpFrame(t, cip, vip, d0MAC, false, true, maxLen-54), redirect},
	}
	arp := tcpFrame(t, cip, vip, bcast, false, false, 0)
	arp[vnetHdrLen+12], arp[vnetHdrLen+13] = 0x08, 0x06
	cases = append(cases, struct {
		name  string
		frame []byte
		want  uint32
	}{"ARP", arp, pass})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := prog.Run(&ebpf.RunOptions{Data: c.frame[vnetHdrLen:]})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("verdict %d, want %d", got, c.want)
			}
		})
	}

	// The map follows the model: a removed service's keys go.
	if err := match.apply(xdpWant(service.NewModel().Snapshot(), nil)); err != nil {
		t.Fatal(err)
	}
	if got, err := prog.Run(&ebpf.RunOptions{Data: tcpFrame(t, cip, vip, d0MAC, true, false, 0)[vnetHdrLen:]}); err != nil || got != pass {
		t.Fatalf("after emptying the map: verdict %d (%v), want %d", got, err, pass)
	}
	var k xdpKey
	var v uint8
	if it := match.m.Iterate(); it.Next(&k, &v) {
		t.Fatalf("map still holds %v", k)
	}
}
