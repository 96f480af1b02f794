package header

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
	ipA  = [4]byte{10, 0, 0, 1}
	ipB  = [4]byte{192, 168, 7, 9}
)

// serialize builds a frame from layers with lengths and checksums filled
// in by gopacket.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func ipv4Layer(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{
		Version: 4, TTL: 61, Id: 0xbeef, Protocol: proto,
		Flags: layers.IPv4DontFragment, TOS: 0x2e,
		SrcIP: net.IP(ipA[:]), DstIP: net.IP(ipB[:]),
	}
}

func ethLayer(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr(macA[:]), DstMAC: net.HardwareAddr(macB[:]), EthernetType: t}
}

func TestEthernetIPv4TCP(t *testing.T) {
	ip := ipv4Layer(layers.IPProtocolTCP)
	ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}} // NOPs, EOL: IHL 6
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 0x01020304, Ack: 0x0a0b0c0d, SYN: true, ACK: true, Window: 512, Urgent: 7,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	frame := serialize(t, ethLayer(layers.EthernetTypeIPv4), ip, tcp, gopacket.Payload("hello"))

	eth := Ethernet(frame)
	if !eth.IsValid() || eth.Dst() != macB || eth.Src() != macA || eth.Type() != EtherTypeIPv4 {
		t.Fatalf("Ethernet: dst %x src %x type %#x", eth.Dst(), eth.Src(), eth.Type())
	}
	v := IPv4(eth.Payload())
	if !v.IsValid(len(v)) {
		t.Fatal("IPv4.IsValid = false")
	}
	if v.Version() != 4 || v.HeaderLength() != 24 || int(v.TotalLength()) != 24+24+5 || v.ID() != 0xbeef ||
		v.TTL() != 61 || v.Protocol() != ProtoTCP || v.TOS() != 0x2e ||
		v.Src() != ipA || v.Dst() != ipB || v.Flags() != IPv4FlagDontFragment || v.IsFragment() || v.More() {
		t.Fatalf("IPv4 getters: hl %d tl %d id %#x ttl %d proto %d src %v dst %v flags %d",
			v.HeaderLength(), v.TotalLength(), v.ID(), v.TTL(), v.Protocol(), v.Src(), v.Dst(), v.Flags())
	}
	if got, want := v.CalculateChecksum(), ip.Checksum; got != want || v.Checksum() != want {
		t.Fatalf("IPv4 checksum: calculated %#04x, field %#04x, gopacket %#04x", got, v.Checksum(), want)
	}
	tc := TCP(v.Payload())
	if !tc.IsValid(len(tc)) {
		t.Fatal("TCP.IsValid = false")
	}
	if tc.SrcPort() != 40000 || tc.DstPort() != 443 || tc.Seq() != 0x01020304 || tc.Ack() != 0x0a0b0c0d ||
		tc.DataOffset() != 24 || tc.Flags() != TCPFlagSyn|TCPFlagAck || tc.Window() != 512 ||
		tc.UrgentPointer() != 7 || tc.Checksum() != tcp.Checksum {
		t.Fatalf("TCP getters: %d %d %#x %#x off %d flags %#x csum %#04x", tc.SrcPort(), tc.DstPort(), tc.Seq(), tc.Ack(), tc.DataOffset(), tc.Flags(), tc.Checksum())
	}
	// The TCP checksum verifies through the pseudo-header.
	ph := PseudoHeaderChecksum(ProtoTCP, v.Src(), v.Dst(), uint16(len(tc)))
	if s := Checksum(tc, ph); s != 0xffff {
		t.Fatalf("TCP checksum does not verify: sum %#04x", s)
	}

	// Setters, then decode again with gopacket.
	eth.SetDst(macA)
	eth.SetSrc(macB)
	v.SetSrc(ipB)
	v.SetDst(ipA)
	v.SetID(7)
	v.SetChecksum(v.CalculateChecksum())
	v.DecTTLWithChecksumUpdate()
	tc.SetSrcPort(1)
	tc.SetDstPort(2)
	tc.SetChecksum(0)
	tc.SetChecksum(^Checksum(tc, PseudoHeaderChecksum(ProtoTCP, v.Src(), v.Dst(), uint16(len(tc)))))
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	gi := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	gt := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	ge := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !bytes.Equal(ge.DstMAC, macA[:]) || !bytes.Equal(ge.SrcMAC, macB[:]) ||
		!gi.SrcIP.Equal(net.IP(ipB[:])) || !gi.DstIP.Equal(net.IP(ipA[:])) || gi.Id != 7 || gi.TTL != 60 ||
		gt.SrcPort != 1 || gt.DstPort != 2 {
		t.Fatalf("after setters gopacket sees %v", pkt)
	}
	if v.CalculateChecksum() != v.Checksum() {
		t.Fatalf("DecTTLWithChecksumUpdate: field %#04x, want %#04x", v.Checksum(), v.CalculateChecksum())
	}
	if err := gt.SetNetworkLayerForChecksum(gi); err != nil {
		t.Fatal(err)
	}
	// Over a segment whose checksum field is filled in, gopacket's
	// ComputeChecksum yields 0 when that checksum is right.
	if got, err := gt.ComputeChecksum(); err != nil || got != 0 {
		t.Fatalf("TCP checksum after setters: gopacket residue %#04x (%v), field %#04x", got, err, gt.Checksum)
	}
}

func TestIPv4Fragment(t *testing.T) {
	ip := ipv4Layer(layers.IPProtocolUDP)
	ip.Flags = layers.IPv4MoreFragments
	ip.FragOffset = 185 // 1480 bytes
	frame := serialize(t, ip, gopacket.Payload(make([]byte, 16)))
	v := IPv4(frame)
	if !v.IsValid(len(v)) || !v.IsFragment() || !v.More() || v.FragmentOffset() != 1480 {
		t.Fatalf("fragment: valid %v frag %v more %v offset %d", v.IsValid(len(v)), v.IsFragment(), v.More(), v.FragmentOffset())
	}
	ip.Flags = 0
	frame = serialize(t, ip, gopacket.Payload(make([]byte, 16)))
	if v := IPv4(frame); !v.IsFragment() || v.More() {
		t.Fatal("last fragment not seen as a fragment")
	}
}

func TestIPv4IsValid(t *testing.T) {
	good := serialize(t, ipv4Layer(layers.IPProtocolUDP), gopacket.Payload(make([]byte, 12)))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tt := range []struct {
		name  string
		b     []byte
		avail int
		want  bool
	}{
		{"good", good, len(good), true},
		{"ethernet padding after", append(bytes.Clone(good), 0, 0, 0, 0), len(good) + 4, true},
		{"empty", nil, 0, false},
		{"19 bytes", good[:19], 19, false},
		{"truncated payload", good[:len(good)-1], len(good) - 1, false},
		{"avail below len", good, len(good) - 1, false},
		{"avail above len", good[:len(good)-1], len(good) + 100, false},
		{"version 6", mut(func(b []byte) []byte { b[0] = 0x65; return b }), len(good), false},
		{"ihl 4", mut(func(b []byte) []byte { b[0] = 0x44; return b }), len(good), false},
		{"ihl 15 beyond total", mut(func(b []byte) []byte { b[0] = 0x4f; return b }), len(good), false},
		{"total below ihl", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 19); return b }), len(good), false},
		{"total 0 (BIG TCP)", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 0); return b }), len(good), false},
		{"total = ihl", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 20); return b }), len(good), true},
	} {
		if got := IPv4(tt.b).IsValid(tt.avail); got != tt.want {
			t.Errorf("%s: IsValid = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Payload clamps on a truncated (quoted) header instead of panicking.
	if p := IPv4(good[:24]).Payload(); len(p) != 4 {
		t.Errorf("truncated Payload len %d, want 4", len(p))
	}
	if p := IPv4(good[:24]).Payload(); p == nil {
		t.Error("truncated Payload nil")
	}
	short := mut(func(b []byte) []byte { b[0] = 0x4f; return b[:30] })
	if p := IPv4(short).Payload(); p != nil {
		t.Errorf("header beyond slice: Payload = %x, want nil", p)
	}
}

func TestUDP(t *testing.T) {
	ip := ipv4Layer(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	frame := serialize(t, ip, udp, gopacket.Payload("abc"))
	u := UDP(IPv4(frame).Payload())
	if !u.IsValid(len(u)) || u.SrcPort() != 5353 || u.DstPort() != 53 || u.Length() != 11 ||
		u.Checksum() != udp.Checksum || string(u.Payload()) != "abc" {
		t.Fatalf("UDP getters: %d %d len %d csum %#04x payload %q", u.SrcPort(), u.DstPort(), u.Length(), u.Checksum(), u.Payload())
	}
	if u.IsValid(10) || UDP(frame[:7]).IsValid(100) {
		t.Error("UDP.IsValid accepts a short datagram")
	}
	u.SetLength(7)
	if u.IsValid(len(u)) {
		t.Error("UDP.IsValid accepts Length 7")
	}
	u.SetLength(11)
	u.SetSrcPort(1)
	u.SetDstPort(2)
	u.SetChecksum(0)
	if u.SrcPort() != 1 || u.DstPort() != 2 || u.Checksum() != 0 {
		t.Error("UDP setters")
	}
}

func TestTCPIsValid(t *testing.T) {
	b := make([]byte, 40)
	for off, want := range map[byte]bool{0: false, 4: false, 5: true, 10: true, 11: false, 15: false} {
		b[12] = off << 4
		if got := TCP(b).IsValid(len(b)); got != want {
			t.Errorf("data offset %d words in 40 bytes: IsValid = %v, want %v", off, got, want)
		}
	}
	b[12] = 5 << 4
	if TCP(b).IsValid(19) || TCP(b[:19]).IsValid(40) {
		t.Error("TCP.IsValid accepts 19 bytes")
	}
}

func TestICMPv4(t *testing.T) {
	ip := ipv4Layer(layers.IPProtocolICMPv4)
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x1234, Seq: 9}
	frame := serialize(t, ip, icmp, gopacket.Payload("ping"))
	m := ICMPv4(IPv4(frame).Payload())
	if !m.IsValid() || m.Type() != ICMPv4Echo || m.Code() != 0 || m.ID() != 0x1234 || m.Seq() != 9 ||
		m.Checksum() != icmp.Checksum || m.CalculateChecksum() != icmp.Checksum || string(m.Payload()) != "ping" || m.IsError() {
		t.Fatalf("ICMP echo getters: type %d id %#x seq %d csum %#04x calc %#04x", m.Type(), m.ID(), m.Seq(), m.Checksum(), m.CalculateChecksum())
	}
	m.SetType(ICMPv4DestUnreachable)
	m.SetCode(ICMPv4FragNeeded)
	m.SetID(0)
	m.SetMTU(1400)
	m.SetChecksum(m.CalculateChecksum())
	pkt := gopacket.NewPacket(frame, layers.LayerTypeIPv4, gopacket.Default)
	g := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if g.TypeCode.Type() != 3 || g.TypeCode.Code() != 4 || g.Seq != 1400 || m.MTU() != 1400 || !m.IsError() {
		t.Fatalf("ICMP setters: gopacket sees %v", g)
	}
	if Checksum(m, 0) != 0xffff {
		t.Fatal("ICMP checksum does not verify")
	}
	for ty, want := range map[uint8]bool{0: false, 3: true, 4: true, 5: true, 8: false, 11: true, 12: true, 13: false} {
		m.SetType(ty)
		if m.IsError() != want {
			t.Errorf("type %d: IsError = %v", ty, !want)
		}
	}
}

func TestARP(t *testing.T) {
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: macA[:], SourceProtAddress: ipA[:],
		DstHwAddress: make([]byte, 6), DstProtAddress: ipB[:],
	}
	frame := serialize(t, ethLayer(layers.EthernetTypeARP), arp)
	a := ARP(Ethernet(frame).Payload())
	if !a.IsValid() || a.Op() != ARPRequest || a.SenderMAC() != macA || a.SenderIP() != ipA ||
		a.TargetMAC() != [6]byte{} || a.TargetIP() != ipB {
		t.Fatalf("ARP getters: op %d %x %v %x %v", a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
	}
	// Build a reply in a fresh buffer and let gopacket decode it.
	out := make([]byte, EthernetMinimumSize+ARPSize)
	e := Ethernet(out)
	e.SetDst(macA)
	e.SetSrc(macB)
	e.SetType(EtherTypeARP)
	r := ARP(e.Payload())
	if r.IsValid() {
		t.Fatal("zeroed ARP is valid")
	}
	r.SetIPv4OverEthernet()
	r.SetOp(ARPReply)
	r.SetSenderMAC(macB)
	r.SetSenderIP(ipB)
	r.SetTargetMAC(macA)
	r.SetTargetIP(ipA)
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	g, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok || !r.IsValid() || g.Operation != layers.ARPReply || !bytes.Equal(g.SourceHwAddress, macB[:]) ||
		!bytes.Equal(g.SourceProtAddress, ipB[:]) || !bytes.Equal(g.DstHwAddress, macA[:]) || !bytes.Equal(g.DstProtAddress, ipA[:]) {
		t.Fatalf("ARP reply: gopacket sees %v", pkt)
	}
	if ARP(out[EthernetMinimumSize : EthernetMinimumSize+27]).IsValid() {
		t.Error("27-byte ARP is valid")
	}
}

func TestVirtioNetHdr(t *testing.T) {
	// A TSO frame as NOTES.md item 8 describes it, in x86 byte order.
	raw := []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00}
	h := VirtioNetHdr(raw)
	if !h.IsValid() || h.Flags() != VirtioNetHdrFNeedsCsum || h.GSOType() != VirtioNetHdrGSOTCPv4 ||
		h.HdrLen() != 66 || h.GSOSize() != 1448 || h.CsumStart() != 34 || h.CsumOffset() != TCPChecksumOffset {
		t.Fatalf("virtio_net_hdr: flags %d gso %d hdrlen %d gsosize %d start %d off %d",
			h.Flags(), h.GSOType(), h.HdrLen(), h.GSOSize(), h.CsumStart(), h.CsumOffset())
	}
	out := VirtioNetHdr(make([]byte, VirtioNetHdrSize))
	out.SetFlags(VirtioNetHdrFNeedsCsum)
	out.SetGSOType(VirtioNetHdrGSOTCPv4)
	out.SetHdrLen(66)
	out.SetGSOSize(1448)
	out.SetCsumStart(34)
	out.SetCsumOffset(16)
	if !bytes.Equal(out, raw) {
		t.Fatalf("setters wrote %x, want %x", []byte(out), raw)
	}
	if VirtioNetHdr(raw[:9]).IsValid() {
		t.Error("9-byte virtio_net_hdr is valid")
	}
}

// TestIPv4Encode: a header written by Encode over a dirty buffer decodes
// with gopacket to the same fields, with a checksum gopacket accepts.
func TestIPv4Encode(t *testing.T) {
	b := make([]byte, IPv4MinimumSize+8)
	for i := range b {
		b[i] = 0xa5
	}
	f := IPv4Fields{TOS: 0xc0, TotalLength: uint16(len(b)), ID: 0x1234, Flags: IPv4FlagDontFragment,
		TTL: 255, Protocol: ProtoVRRP, Src: [4]byte{10, 0, 0, 1}, Dst: [4]byte{224, 0, 0, 18}}
	IPv4(b).Encode(&f)
	pkt := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatalf("gopacket: %v", pkt)
	}
	if ip.Version != 4 || ip.IHL != 5 || ip.TOS != 0xc0 || int(ip.Length) != len(b) || ip.Id != 0x1234 ||
		ip.Flags != layers.IPv4DontFragment || ip.FragOffset != 0 || ip.TTL != 255 || ip.Protocol != ProtoVRRP ||
		ip.SrcIP.String() != "10.0.0.1" || ip.DstIP.String() != "224.0.0.18" {
		t.Fatalf("decoded %+v", ip)
	}
	if Checksum(b[:IPv4MinimumSize], 0) != 0xffff {
		t.Fatalf("header checksum %#04x does not verify", IPv4(b).Checksum())
	}
}
