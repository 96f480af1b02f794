package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	src   = netip.MustParseAddr("192.168.7.2")
	vip1  = netip.MustParseAddr("192.168.7.100")
	vip2  = netip.MustParseAddr("10.1.2.3")
	pass8 = [8]byte{'s', 'e', 'c', 'r', 'e', 't', 0, 0}
)

// refChecksum is RFC 1071 section 4.1 written out: the complement of the
// 16-bit ones'-complement sum, an odd byte padded with zero.
func refChecksum(b []byte) uint16 {
	var sum uint32
	for len(b) > 1 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// refV3Checksum is RFC 5798 5.2.8: the RFC 1071 checksum over the IPv4
// pseudo-header (source, destination, zero, protocol 112, VRRP length)
// followed by the VRRP message, with its checksum field taken as zero.
func refV3Checksum(srcIP, dstIP netip.Addr, msg []byte) uint16 {
	m := bytes.Clone(msg)
	m[6], m[7] = 0, 0
	s, d := srcIP.As4(), dstIP.As4()
	ph := append(append(s[:], d[:]...), 0, 112, byte(len(m)>>8), byte(len(m)))
	return refChecksum(append(ph, m...))
}

// refV2Checksum is RFC 3768 5.3.8: RFC 1071 over the VRRP message alone.
func refV2Checksum(msg []byte) uint16 {
	m := bytes.Clone(msg)
	m[6], m[7] = 0, 0
	return refChecksum(m)
}

func decodeIPv4(t *testing.T, b []byte) (*layers.IPv4, gopacket.Packet) {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		t.Fatal("gopacket found no IPv4 layer")
	}
	if ip.TTL != 255 || ip.Protocol != layers.IPProtocol(112) || ip.TOS != 0xc0 || ip.IHL != 5 {
		t.Errorf("IPv4 TTL %d proto %d TOS %#x IHL %d, want 255 112 0xc0 5", ip.TTL, ip.Protocol, ip.TOS, ip.IHL)
	}
	if int(ip.Length) != len(b) {
		t.Errorf("IPv4 total length %d, want %d", ip.Length, len(b))
	}
	if got, want := binary.BigEndian.Uint16(b[10:]), refIPChecksum(b[:20]); got != want {
		t.Errorf("IPv4 header checksum %#04x, want %#04x", got, want)
	}
	return ip, p
}

func refIPChecksum(h []byte) uint16 {
	h = bytes.Clone(h)
	h[10], h[11] = 0, 0
	return refChecksum(h)
}

func TestAdvertV2GoldenGopacket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a      Advert
		golden string
	}{
		{
			name:   "pass auth",
			a:      Advert{Version: 2, VRID: 51, Priority: 150, AdvertInt: time.Second, AuthType: AuthPass, AuthData: pass8, Addrs: []netip.Addr{vip1, vip2}},
			golden: "45c0002c00000000ff7012e5c0a80702e0000012" + "213396020101376c" + "c0a807640a010203" + "7365637265740000",
		},
		{
			name:   "no auth",
			a:      Advert{Version: 2, VRID: 7, Priority: 100, AdvertInt: 3 * time.Second, Addrs: []netip.Addr{vip1}},
			golden: "45c0002800000000ff7012e9c0a80702e0000012" + "210764010003b2e7" + "c0a80764" + "0000000000000000",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendAdvert(nil, src, MulticastGroup, &tc.a)
			if got := hex.EncodeToString(b); got != tc.golden {
				t.Errorf("packet\n got %s\nwant %s", got, tc.golden)
			}
			ip, p := decodeIPv4(t, b)
			if !net.IP(ip.SrcIP).Equal(src.AsSlice()) || !net.IP(ip.DstIP).Equal(MulticastGroup.AsSlice()) {
				t.Errorf("IPv4 %v -> %v", ip.SrcIP, ip.DstIP)
			}
			v, ok := p.Layer(layers.LayerTypeVRRP).(*layers.VRRPv2)
			if !ok {
				t.Fatal("gopacket found no VRRPv2 layer")
			}
			if v.Version != 2 || v.Type != layers.VRRPv2Advertisement || v.VirtualRtrID != tc.a.VRID || v.Priority != tc.a.Priority ||
				int(v.CountIPAddr) != len(tc.a.Addrs) || time.Duration(v.AdverInt)*time.Second != tc.a.AdvertInt || uint8(v.AuthType) != tc.a.AuthType {
				t.Errorf("gopacket VRRPv2 %+v, want %+v", v, tc.a)
			}
			for n, addr := range tc.a.Addrs {
				if !v.IPAddress[n].Equal(addr.AsSlice()) {
					t.Errorf("address %d: %v, want %v", n, v.IPAddress[n], addr)
				}
			}
			if want := refV2Checksum(b[20:]); v.Checksum != want {
				t.Errorf("checksum %#04x, want %#04x", v.Checksum, want)
			}
			if got := b[len(b)-8:]; !bytes.Equal(got, tc.a.AuthData[:]) {
				t.Errorf("auth data %x, want %x", got, tc.a.AuthData)
			}
			var back Advert
			if r := ParseAdvert(b, &back); r != ReasonOK || !reflect.DeepEqual(back, tc.a) {
				t.Errorf("ParseAdvert = %v %+v, want ok %+v", r, back, tc.a)
			}
		})
	}
}

func TestAdvertV3GoldenRFC5798PseudoHeaderChecksum(t *testing.T) {
	a := Advert{Version: 3, VRID: 51, Priority: 100, AdvertInt: 100 * time.Millisecond, Addrs: []netip.Addr{vip1, vip2}}
	b := AppendAdvert(nil, src, MulticastGroup, &a)
	const golden = "45c0002400000000ff7012edc0a80702e0000012" + "31336402000aee71" + "c0a807640a010203"
	if got := hex.EncodeToString(b); got != golden {
		t.Errorf("packet\n got %s\nwant %s", got, golden)
	}
	decodeIPv4(t, b)
	m := b[20:]
	if m[0] != 0x31 || m[1] != 51 || m[2] != 100 || m[3] != 2 {
		t.Errorf("header %x", m[:4])
	}
	if got := binary.BigEndian.Uint16(m[4:]); got != 10 {
		t.Errorf("max adver int %d centiseconds, want 10", got)
	}
	if got, want := binary.BigEndian.Uint16(m[6:]), refV3Checksum(src, MulticastGroup, m); got != want {
		t.Errorf("checksum %#04x, want %#04x", got, want)
	}
	// The v2 rule (message alone) must give something else, or the test
	// would not tell the two apart.
	if refV2Checksum(m) == refV3Checksum(src, MulticastGroup, m) {
		t.Fatal("v2 and v3 checksums coincide for the golden packet")
	}
	var back Advert
	if r := ParseAdvert(b, &back); r != ReasonOK || !reflect.DeepEqual(back, a) {
		t.Errorf("ParseAdvert = %v %+v, want ok %+v", r, back, a)
	}
}

func TestAdvertV3ReservedBitsIgnored(t *testing.T) {
	a := Advert{Version: 3, VRID: 1, Priority: 1, AdvertInt: 40950 * time.Millisecond, Addrs: []netip.Addr{vip1}}
	b := AppendAdvert(nil, src, MulticastGroup, &a)
	b[24] |= 0xf0
	fixV3Checksum(b)
	var back Advert
	if r := ParseAdvert(b, &back); r != ReasonOK || back.AdvertInt != a.AdvertInt {
		t.Errorf("ParseAdvert = %v, interval %v, want ok %v", r, back.AdvertInt, a.AdvertInt)
	}
}

func TestAdvertFrameAndGARPGopacket(t *testing.T) {
	mac := VirtualMAC(51)
	if mac != [6]byte{0, 0, 0x5e, 0, 1, 51} {
		t.Errorf("VirtualMAC(51) = %x", mac)
	}
	a := Advert{Version: 2, VRID: 51, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1}}
	prefix := []byte("headroom")
	f := AppendAdvertFrame(bytes.Clone(prefix), mac, MulticastMAC, src, MulticastGroup, &a)
	if !bytes.Equal(f[:len(prefix)], prefix) {
		t.Fatal("AppendAdvertFrame overwrote the prefix")
	}
	p := gopacket.NewPacket(f[len(prefix):], layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil || eth.EthernetType != layers.EthernetTypeIPv4 || !bytes.Equal(eth.SrcMAC, mac[:]) || !bytes.Equal(eth.DstMAC, MulticastMAC[:]) {
		t.Fatalf("Ethernet %+v", eth)
	}
	if v, _ := p.Layer(layers.LayerTypeVRRP).(*layers.VRRPv2); v == nil || v.VirtualRtrID != 51 {
		t.Fatalf("VRRP layer %+v", v)
	}

	hw := [6]byte{2, 0, 0, 0, 0, 0xa}
	g := AppendGARP(nil, hw, vip1)
	if len(g) != 42 {
		t.Fatalf("GARP is %d bytes, want 42", len(g))
	}
	p = gopacket.NewPacket(g, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil || eth.EthernetType != layers.EthernetTypeARP || !bytes.Equal(eth.DstMAC, bytes.Repeat([]byte{0xff}, 6)) || !bytes.Equal(eth.SrcMAC, hw[:]) {
		t.Fatalf("Ethernet %+v", eth)
	}
	arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if arp == nil {
		t.Fatal("gopacket found no ARP layer")
	}
	if arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 || arp.HwAddressSize != 6 || arp.ProtAddressSize != 4 ||
		arp.Operation != layers.ARPRequest || !bytes.Equal(arp.SourceHwAddress, hw[:]) || !bytes.Equal(arp.DstHwAddress, make([]byte, 6)) ||
		!bytes.Equal(arp.SourceProtAddress, vip1.AsSlice()) || !bytes.Equal(arp.DstProtAddress, vip1.AsSlice()) {
		t.Errorf("ARP %+v", arp)
	}
}

// fixV2Checksum and fixV3Checksum recompute the VRRP checksum of an
// IHL-5 packet after a test edited it; fixIP the IPv4 header's, options
// included.
func fixV2Checksum(b []byte) {
	binary.BigEndian.PutUint16(b[26:], refV2Checksum(b[20:]))
}

func fixV3Checksum(b []byte) {
	s, d := netip.AddrFrom4([4]byte(b[12:])), netip.AddrFrom4([4]byte(b[16:]))
	binary.BigEndian.PutUint16(b[26:], refV3Checksum(s, d, b[20:]))
}

func fixIP(b []byte) { binary.BigEndian.PutUint16(b[10:], refIPChecksum(b[:int(b[0]&0xf)*4])) }

func TestParseAdvertReasons(t *testing.T) {
	v2 := func() []byte {
		return AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 2, VRID: 1, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1}})
	}
	v3 := func() []byte {
		return AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 3, VRID: 1, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1}})
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want Reason
	}{
		{"v2 ok", v2(), ReasonOK},
		{"v3 ok", v3(), ReasonOK},
		{"empty", nil, ReasonTruncated},
		{"short IPv4 header", v2()[:19], ReasonTruncated},
		{"total length beyond buffer", v2()[:30], ReasonTruncated},
		{"IPv4 header only", func() []byte {
			b := v2()[:20]
			b[3] = 20
			fixIP(b)
			return b
		}(), ReasonTruncated},
		{"VRRP header cut", func() []byte {
			b := v2()[:27]
			b[3] = 27
			fixIP(b)
			return b
		}(), ReasonTruncated},
		{"IPv6 version", func() []byte { b := v2(); b[0] = 0x65; return b }(), ReasonBadIP},
		{"IHL 4", func() []byte { b := v2(); b[0] = 0x44; return b }(), ReasonBadIP},
		{"IHL beyond total length", func() []byte { b := v2(); b[0] = 0x4f; return b }(), ReasonBadIP},
		{"IPv4 checksum", func() []byte { b := v2(); b[10]++; return b }(), ReasonBadIP},
		{"protocol UDP", func() []byte { b := v2(); b[9] = 17; fixIP(b); return b }(), ReasonBadIP},
		{"fragment", func() []byte { b := v2(); b[6] = 0x20; fixIP(b); return b }(), ReasonBadIP},
		{"TTL 254 RFC 5798 7.1", func() []byte { b := v2(); b[8] = 254; fixIP(b); return b }(), ReasonTTL},
		{"version 1", func() []byte { b := v2(); b[20] = 0x11; fixV2Checksum(b); return b }(), ReasonVersion},
		{"version 4", func() []byte { b := v3(); b[20] = 0x41; fixV3Checksum(b); return b }(), ReasonVersion},
		{"type 2", func() []byte { b := v2(); b[20] = 0x22; fixV2Checksum(b); return b }(), ReasonType},
		{"v2 count beyond message", func() []byte { b := v2(); b[23] = 2; fixV2Checksum(b); return b }(), ReasonLength},
		{"v2 no room for auth data", func() []byte {
			b := v2()[:32]
			b[3] = 32
			fixIP(b)
			fixV2Checksum(b)
			return b
		}(), ReasonLength},
		{"v3 count beyond message", func() []byte { b := v3(); b[23] = 2; fixV3Checksum(b); return b }(), ReasonLength},
		{"v2 checksum", func() []byte { b := v2(); b[27]++; return b }(), ReasonChecksum},
		{"v3 checksum", func() []byte { b := v3(); b[27]++; return b }(), ReasonChecksum},
		{"v3 checked with v2 rule", func() []byte { b := v3(); fixV2Checksum(b); return b }(), ReasonChecksum},
		{"v3 pseudo-header covers dst", func() []byte { b := v3(); b[19] = 19; fixIP(b); return b }(), ReasonChecksum},
		{"v2 trailing bytes covered", func() []byte {
			b := append(v2(), 0, 0, 0, 0)
			b[3] += 4
			fixIP(b)
			fixV2Checksum(b)
			return b
		}(), ReasonOK},
		{"IPv4 options", func() []byte {
			b := v3()
			b = append(append(bytes.Clone(b[:20]), 1, 1, 1, 0), b[20:]...)
			b[0] = 0x46
			b[3] += 4
			fixIP(b)
			return b
		}(), ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a Advert
			if got := ParseAdvert(tc.b, &a); got != tc.want {
				t.Errorf("ParseAdvert = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	want := []string{"ok", "truncated", "bad_ip", "ttl", "version", "type", "checksum", "length", "vrid", "auth", "interval", "addrs"}
	if len(want) != int(NumReasons) {
		t.Fatalf("NumReasons = %d, want %d", NumReasons, len(want))
	}
	for r, w := range want {
		if got := Reason(r).String(); got != w {
			t.Errorf("Reason(%d) = %q, want %q", r, got, w)
		}
	}
	if got := NumReasons.String(); got != "Reason(12)" {
		t.Errorf("NumReasons.String() = %q", got)
	}
}

func randomAdvert(r *rand.Rand) Advert {
	a := Advert{Version: uint8(2 + r.IntN(2)), VRID: uint8(r.Uint32()), Priority: uint8(r.Uint32())}
	if a.Version == 2 {
		a.AdvertInt = time.Duration(r.IntN(256)) * time.Second
		a.AuthType = uint8(r.Uint32())
		binary.LittleEndian.PutUint64(a.AuthData[:], r.Uint64())
	} else {
		a.AdvertInt = time.Duration(r.IntN(4096)) * centisecond
	}
	a.Addrs = make([]netip.Addr, r.IntN(20))
	for n := range a.Addrs {
		a.Addrs[n] = netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	return a
}

func TestAdvertRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var back Advert
	for range 2000 {
		a := randomAdvert(r)
		s := netip.AddrFrom4([4]byte{10, 0, byte(r.Uint32()), byte(r.Uint32())})
		d := netip.AddrFrom4([4]byte{224, 0, 0, byte(r.Uint32())})
		b := AppendAdvert(nil, s, d, &a)
		if rs := ParseAdvert(b, &back); rs != ReasonOK {
			t.Fatalf("ParseAdvert(AppendAdvert(%+v)) = %v", a, rs)
		}
		if len(a.Addrs) == 0 {
			a.Addrs = back.Addrs[:0]
		}
		if !reflect.DeepEqual(back, a) {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, a)
		}
	}
}

func TestParseAdvertDoesNotAllocate(t *testing.T) {
	b := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 3, VRID: 1, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1, vip2}})
	var a Advert
	ParseAdvert(b, &a)
	if n := testing.AllocsPerRun(100, func() { ParseAdvert(b, &a) }); n != 0 {
		t.Errorf("ParseAdvert allocates %v times per run, want 0", n)
	}
}

func TestAppendAdvertPanics(t *testing.T) {
	for _, a := range []Advert{
		{Version: 1},
		{Version: 3, Addrs: make([]netip.Addr, 256)},
		{Version: 3, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendAdvert(%d addresses, version %d) did not panic", len(a.Addrs), a.Version)
				}
			}()
			AppendAdvert(nil, src, MulticastGroup, &a)
		}()
	}
}

func BenchmarkParseAdvert(b *testing.B) {
	for _, v := range []uint8{2, 3} {
		p := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: v, VRID: 1, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1, vip2}})
		b.Run("v"+string('0'+v), func(b *testing.B) {
			var a Advert
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if ParseAdvert(p, &a) != ReasonOK {
					b.Fatal("not ok")
				}
			}
		})
	}
}

func BenchmarkAppendAdvert(b *testing.B) {
	a := Advert{Version: 3, VRID: 1, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1, vip2}}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAdvert(buf[:0], src, MulticastGroup, &a)
	}
}
