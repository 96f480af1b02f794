package header

import (
	"bytes"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// seedFrames are well-formed packets for the parsers' fuzz targets, from
// the IP header on. Each target also has checked-in seeds under
// testdata/fuzz/<FuzzName>/, written by TestWriteFuzzSeeds.
func seedFrames(t testing.TB) [][]byte {
	ip := ipv4Layer(layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 1024}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	seg := serialize(t, ip, tcp, gopacket.Payload("GET /"))

	ip = ipv4Layer(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
	_ = udp.SetNetworkLayerForChecksum(ip)
	dgram := serialize(t, ip, udp, gopacket.Payload("q"))

	ip = ipv4Layer(layers.IPProtocolICMPv4)
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1400}
	quote := serialize(t, ip, icmp, gopacket.Payload(dgram[:28]))

	ip = ipv4Layer(layers.IPProtocolUDP)
	ip.Flags, ip.FragOffset = layers.IPv4MoreFragments, 0
	frag := serialize(t, ip, gopacket.Payload(make([]byte, 24)))
	return [][]byte{seg, dgram, quote, frag}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(0xffff))
	f.Add(bytes.Repeat([]byte{0xab}, 33), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Fatalf("Checksum(%x, %#04x) = %#04x, want %#04x", b, initial, got, want)
		}
	})
}

func FuzzEthernet(f *testing.F) {
	f.Add(serialize(f, ethLayer(layers.EthernetTypeIPv4), gopacket.Payload("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Ethernet(b)
		if !e.IsValid() {
			return
		}
		dst, src, typ := e.Dst(), e.Src(), e.Type()
		g := &layers.Ethernet{}
		if err := g.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err == nil {
			if !bytes.Equal(g.DstMAC, dst[:]) || !bytes.Equal(g.SrcMAC, src[:]) {
				t.Fatalf("MACs %x %x, gopacket %v %v", dst, src, g.DstMAC, g.SrcMAC)
			}
		}
		e.SetDst(src)
		e.SetSrc(dst)
		e.SetType(typ + 1)
		if e.Dst() != src || e.Src() != dst || e.Type() != typ+1 || len(e.Payload()) != len(b)-EthernetMinimumSize {
			t.Fatal("setters do not round-trip")
		}
	})
}

func FuzzIPv4(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b, len(b))
	}
	f.Fuzz(func(t *testing.T, b []byte, avail int) {
		ip := IPv4(b)
		if len(b) >= IPv4MinimumSize {
			_ = ip.Payload() // clamps even without the gate
		}
		if !ip.IsValid(avail) {
			return
		}
		hl, tl := ip.HeaderLength(), int(ip.TotalLength())
		if hl < IPv4MinimumSize || hl > tl || tl > len(b) || tl > avail {
			t.Fatalf("IsValid passed hl %d tl %d len %d avail %d", hl, tl, len(b), avail)
		}
		if len(ip.Payload()) != tl-hl {
			t.Fatalf("Payload len %d, want %d", len(ip.Payload()), tl-hl)
		}
		_, _, _, _, _ = ip.ID(), ip.Flags(), ip.FragmentOffset(), ip.IsFragment(), ip.More()
		_, _ = ip.TOS(), ip.Version()

		g := &layers.IPv4{}
		if err := g.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err == nil {
			src, dst := ip.Src(), ip.Dst()
			if !g.SrcIP.Equal(net.IP(src[:])) || !g.DstIP.Equal(net.IP(dst[:])) ||
				uint8(g.Protocol) != ip.Protocol() || g.TTL != ip.TTL() || int(g.IHL)*4 != hl ||
				g.Checksum != ip.Checksum() || g.FragOffset*8 != ip.FragmentOffset() {
				t.Fatalf("view and gopacket disagree: %v", g)
			}
		}

		// A header made valid stays valid through a TTL decrement.
		ip.SetChecksum(ip.CalculateChecksum())
		if s := Checksum(b[:hl], 0); s != 0xffff {
			t.Fatalf("CalculateChecksum: header sums to %#04x", s)
		}
		ttl := ip.TTL()
		ip.DecTTLWithChecksumUpdate()
		if ip.TTL() != ttl-1 {
			t.Fatalf("TTL %d after decrementing %d", ip.TTL(), ttl)
		}
		if s := Checksum(b[:hl], 0); s != 0xffff {
			t.Fatalf("DecTTLWithChecksumUpdate from TTL %d: header sums to %#04x", ttl, s)
		}
	})
}

func FuzzTCP(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(IPv4(b).Payload())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tc := TCP(b)
		if !tc.IsValid(len(b)) {
			return
		}
		if off := tc.DataOffset(); off < TCPMinimumSize || off > len(b) {
			t.Fatalf("IsValid passed data offset %d in %d bytes", off, len(b))
		}
		_, _, _, _ = tc.SrcPort(), tc.DstPort(), tc.Seq(), tc.Ack()
		_, _, _, _ = tc.Flags(), tc.Window(), tc.Checksum(), tc.UrgentPointer()
		tc.SetSrcPort(tc.DstPort())
		tc.SetDstPort(1)
		tc.SetChecksum(2)
		if tc.DstPort() != 1 || tc.Checksum() != 2 {
			t.Fatal("setters do not round-trip")
		}
	})
}

func FuzzUDP(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(IPv4(b).Payload())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u := UDP(b)
		if !u.IsValid(len(b)) {
			return
		}
		if len(u.Payload()) != int(u.Length())-UDPSize {
			t.Fatalf("Payload len %d with Length %d", len(u.Payload()), u.Length())
		}
		_, _, _ = u.SrcPort(), u.DstPort(), u.Checksum()
		u.SetLength(0)
		if u.Payload() != nil {
			t.Fatal("Payload with Length 0 not nil")
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(IPv4(b).Payload())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ICMPv4(b)
		if !m.IsValid() {
			return
		}
		_, _, _, _, _, _ = m.Type(), m.Code(), m.ID(), m.Seq(), m.MTU(), m.IsError()
		if len(m.Payload()) != len(b)-ICMPv4MinimumSize {
			t.Fatal("Payload length")
		}
		m.SetChecksum(m.CalculateChecksum())
		if s := Checksum(b, 0); s != 0xffff {
			t.Fatalf("CalculateChecksum: message sums to %#04x", s)
		}
	})
}

func FuzzARP(f *testing.F) {
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPReply, SourceHwAddress: macA[:], SourceProtAddress: ipA[:],
		DstHwAddress: macB[:], DstProtAddress: ipB[:],
	}
	f.Add(serialize(f, arp))
	f.Add(make([]byte, ARPSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ARP(b)
		if !a.IsValid() {
			return
		}
		g := &layers.ARP{}
		if err := g.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			t.Fatalf("valid for the view, gopacket says %v", err)
		}
		sm, si, tm, ti := a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP()
		if g.Operation != a.Op() || !bytes.Equal(g.SourceHwAddress, sm[:]) || !bytes.Equal(g.SourceProtAddress, si[:]) ||
			!bytes.Equal(g.DstHwAddress, tm[:]) || !bytes.Equal(g.DstProtAddress, ti[:]) {
			t.Fatalf("view and gopacket disagree: %v", g)
		}
	})
}

func FuzzVirtioNetHdr(f *testing.F) {
	f.Add([]byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := VirtioNetHdr(b)
		if !h.IsValid() {
			return
		}
		c := VirtioNetHdr(make([]byte, VirtioNetHdrSize))
		c.SetFlags(h.Flags())
		c.SetGSOType(h.GSOType())
		c.SetHdrLen(h.HdrLen())
		c.SetGSOSize(h.GSOSize())
		c.SetCsumStart(h.CsumStart())
		c.SetCsumOffset(h.CsumOffset())
		if !bytes.Equal(c, b[:VirtioNetHdrSize]) {
			t.Fatalf("round trip %x, want %x", []byte(c), b[:VirtioNetHdrSize])
		}
	})
}
