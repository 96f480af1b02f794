package modes

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/header"
)

// The lab of the golden tests: a client, the VIP, a real server behind
// the director and a router on the real servers' side.
var (
	client = netip.MustParseAddrPort("198.51.100.7:40000")
	vip    = netip.MustParseAddrPort("203.0.113.10:80")
	rip    = netip.MustParseAddrPort("10.0.0.11:8080")
	router = netip.MustParseAddr("10.0.0.254")

	macClient   = [6]byte{0x02, 0xc1, 0, 0, 0, 0x01}
	macDirector = [6]byte{0x02, 0xd1, 0, 0, 0, 0x01}
)

// pktSpec is what the packet builders' options change.
type pktSpec struct {
	payload   int
	ipOptions bool
	ttl       uint8
	flags     layers.IPv4Flag
	fragOff   uint16 // bytes
	noUDPCsum bool
}

type pktOpt func(*pktSpec)

// payload sets the transport payload length; its bytes are a pattern.
func payload(n int) pktOpt { return func(s *pktSpec) { s.payload = n } }

// ipOptions adds 4 bytes of IPv4 options (NOP, NOP, NOP, EOL): IHL 6.
func ipOptions() pktOpt { return func(s *pktSpec) { s.ipOptions = true } }

// fragment makes the packet a fragment at offset off (bytes, multiple of
// 8), with More Fragments when more.
func fragment(more bool, off uint16) pktOpt {
	return func(s *pktSpec) {
		s.fragOff = off
		if more {
			s.flags = layers.IPv4MoreFragments
		}
	}
}

// noUDPChecksum sends the UDP datagram without checksum (field 0).
func noUDPChecksum() pktOpt { return func(s *pktSpec) { s.noUDPCsum = true } }

func spec(opts []pktOpt) pktSpec {
	s := pktSpec{ttl: 63, flags: layers.IPv4DontFragment}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

func ipLayer(src, dst netip.Addr, proto layers.IPProtocol, s pktSpec) *layers.IPv4 {
	ip := &layers.IPv4{
		Version: 4, TTL: s.ttl, Id: 0x4242, Protocol: proto, Flags: s.flags, FragOffset: s.fragOff / 8,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(dst.AsSlice()),
	}
	if s.ipOptions {
		ip.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}
	}
	return ip
}

func ethernet() *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: net.HardwareAddr(macClient[:]), DstMAC: net.HardwareAddr(macDirector[:]), EthernetType: layers.EthernetTypeIPv4}
}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

// tcp4 builds an Ethernet frame holding a TCP segment with valid
// checksums; flags are header.TCPFlag* bits.
func tcp4(tb testing.TB, src, dst netip.AddrPort, flags uint8, opts ...pktOpt) []byte {
	tb.Helper()
	s := spec(opts)
	ip := ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolTCP, s)
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: 1000, Ack: 2000, Window: 65535,
		FIN: flags&header.TCPFlagFin != 0, SYN: flags&header.TCPFlagSyn != 0, RST: flags&header.TCPFlagRst != 0,
		PSH: flags&header.TCPFlagPsh != 0, ACK: flags&header.TCPFlagAck != 0, URG: flags&header.TCPFlagUrg != 0,
	}
	if flags&header.TCPFlagSyn != 0 {
		tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, ethernet(), ip, tcp, gopacket.Payload(pattern(s.payload)))
}

// udp4 builds an Ethernet frame holding a UDP datagram with valid
// checksums (or none, with noUDPChecksum).
func udp4(tb testing.TB, src, dst netip.AddrPort, opts ...pktOpt) []byte {
	tb.Helper()
	s := spec(opts)
	ip := ipLayer(src.Addr(), dst.Addr(), layers.IPProtocolUDP, s)
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	f := serialize(tb, ethernet(), ip, udp, gopacket.Payload(pattern(s.payload)))
	u := header.UDP(ipOf(f).Payload())
	switch {
	case s.noUDPCsum:
		u.SetChecksum(0)
	case u.Checksum() == 0 && s.fragOff == 0:
		u.SetChecksum(0xffff) // gopacket sends a computed 0 as 0
	}
	return f
}

// icmpErr4 builds an Ethernet frame holding an ICMP error from `from` to
// `to` that quotes the first quoteLen bytes of the IPv4 packet in frame
// (all of it if shorter). For fragmentation needed the MTU is 1400.
func icmpErr4(tb testing.TB, from, to netip.Addr, typ, code uint8, frame []byte, quoteLen int) []byte {
	tb.Helper()
	q := ipOf(frame)
	q = q[:min(quoteLen, len(q))]
	ip := ipLayer(from, to, layers.IPProtocolICMPv4, spec(nil))
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}
	if typ == header.ICMPv4DestUnreachable && code == header.ICMPv4FragNeeded {
		icmp.Seq = 1400
	}
	return serialize(tb, ethernet(), ip, icmp, gopacket.Payload(q))
}

// echo4 builds an Ethernet frame holding an ICMP echo request with data
// bytes of data.
func echo4(tb testing.TB, src, dst netip.Addr, id, seq uint16, data int, opts ...pktOpt) []byte {
	tb.Helper()
	ip := ipLayer(src, dst, layers.IPProtocolICMPv4, spec(opts))
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: id, Seq: seq}
	return serialize(tb, ethernet(), ip, icmp, gopacket.Payload(pattern(data)))
}

// ipOf returns the IPv4 view of an Ethernet frame.
func ipOf(frame []byte) header.IPv4 { return header.IPv4(frame[header.EthernetMinimumSize:]) }

// withEthernet puts a zero-address Ethernet header of type IPv4 in front
// of the IP packet b, for the targets that take frames.
func withEthernet(b []byte) []byte {
	eth := make([]byte, header.EthernetMinimumSize, header.EthernetMinimumSize+len(b))
	header.Ethernet(eth).SetType(header.EtherTypeIPv4)
	return append(eth, b...)
}

func a4(a netip.Addr) [4]byte { return a.As4() }

// refSum is RFC 1071 section 4.1, kept independent of package header.
func refSum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// refPseudo is the uncomplemented pseudo-header sum for ip's transport
// bytes.
func refPseudo(ip header.IPv4) uint16 {
	src, dst := ip.Src(), ip.Dst()
	ph := append(src[:], dst[:]...)
	ph = append(ph, 0, ip.Protocol())
	ph = binary.BigEndian.AppendUint16(ph, uint16(len(ip.Payload())))
	return refSum(ph, 0)
}

// l4CsumOff returns the offset of the transport checksum in ip's payload.
func l4CsumOff(tb testing.TB, ip header.IPv4) int {
	switch ip.Protocol() {
	case header.ProtoTCP:
		return header.TCPChecksumOffset
	case header.ProtoUDP:
		return header.UDPChecksumOffset
	}
	tb.Fatalf("protocol %d has no transport checksum", ip.Protocol())
	return 0
}

// makePartial turns a frame's transport checksum into a partial one, as a
// local sender's kernel leaves it (CHECKSUM_PARTIAL): the uncomplemented
// pseudo-header sum.
func makePartial(tb testing.TB, frame []byte) {
	tb.Helper()
	ip := ipOf(frame)
	off := l4CsumOff(tb, ip)
	binary.BigEndian.PutUint16(ip.Payload()[off:], refPseudo(ip))
}

// complete does what the kernel does with a partial checksum on transmit
// (skb_checksum_help): sum the transport bytes from csum_start, partial
// field included, and store the complement; UDP sends 0 as 0xffff.
func complete(tb testing.TB, frame []byte) {
	tb.Helper()
	ip := ipOf(frame)
	off := l4CsumOff(tb, ip)
	l4 := ip.Payload()
	x := ^refSum(l4, 0)
	if x == 0 && ip.Protocol() == header.ProtoUDP {
		x = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], x)
}

// decoded is a frame as gopacket sees it.
type decoded struct {
	frame []byte
	pkt   gopacket.Packet
	eth   *layers.Ethernet
	ip    *layers.IPv4
	tcp   *layers.TCP
	udp   *layers.UDP
	icmp  *layers.ICMPv4
	// The quote of an ICMP error: its IPv4 header and first 8 transport
	// bytes.
	inner   *layers.IPv4
	innerL4 []byte
}

// check is one assertion on a decoded frame, in the style of gVisor's
// checker package.
type check func(t *testing.T, d *decoded)

// checkFrame decodes frame with gopacket and asserts that every checksum in
// it is valid (IPv4 header, TCP/UDP with pseudo-header, ICMP, the quoted
// IPv4 header of an ICMP error), then runs checks.
func checkFrame(t *testing.T, frame []byte, checks ...check) {
	t.Helper()
	d := &decoded{frame: frame, pkt: gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)}
	if el := d.pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	d.eth, _ = d.pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.ip, _ = d.pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if d.eth == nil || d.ip == nil {
		t.Fatalf("not Ethernet/IPv4: %v", d.pkt)
	}
	ip := ipOf(frame)
	hl := ip.HeaderLength()
	if s := refSum(ip[:hl], 0); s != 0xffff {
		t.Errorf("IPv4 header checksum %#04x invalid (sum %#04x)", ip.Checksum(), s)
	}
	// gopacket's own encoder, for a second opinion on the IPv4 checksum.
	if got := reserializeIPv4Checksum(t, d.ip); got != ip.Checksum() {
		t.Errorf("IPv4 header checksum %#04x, gopacket computes %#04x", ip.Checksum(), got)
	}
	d.tcp, _ = d.pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	d.udp, _ = d.pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	d.icmp, _ = d.pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	l4 := ip.Payload()
	switch {
	case ip.IsFragment():
		// A fragment's transport checksum covers the whole datagram.
	case d.tcp != nil:
		if s := refSum(l4, refPseudo(ip)); s != 0xffff {
			t.Errorf("TCP checksum %#04x invalid (sum %#04x)", d.tcp.Checksum, s)
		}
		if err := d.tcp.SetNetworkLayerForChecksum(d.ip); err != nil {
			t.Fatal(err)
		}
		if r, err := d.tcp.ComputeChecksum(); err != nil || r != 0 {
			t.Errorf("TCP checksum %#04x: gopacket residue %#04x (%v), want 0", d.tcp.Checksum, r, err)
		}
	case d.udp != nil && d.udp.Checksum != 0:
		if s := refSum(l4, refPseudo(ip)); s != 0xffff {
			t.Errorf("UDP checksum %#04x invalid (sum %#04x)", d.udp.Checksum, s)
		}
	case d.icmp != nil:
		if s := refSum(l4, 0); s != 0xffff {
			t.Errorf("ICMP checksum %#04x invalid (sum %#04x)", d.icmp.Checksum, s)
		}
		m := header.ICMPv4(l4)
		if m.IsError() {
			in := &layers.IPv4{}
			if err := in.DecodeFromBytes(m.Payload(), gopacket.NilDecodeFeedback); err != nil {
				t.Fatalf("quoted IPv4 header: %v", err)
			}
			d.inner = in
			qhl := int(in.IHL) * 4
			d.innerL4 = m.Payload()[qhl:]
			if s := refSum(m.Payload()[:qhl], 0); s != 0xffff {
				t.Errorf("quoted IPv4 header checksum %#04x invalid (sum %#04x)", in.Checksum, s)
			}
		}
	}
	for _, c := range checks {
		c(t, d)
	}
}

// reserializeIPv4Checksum returns the header checksum gopacket computes
// for the decoded header ip.
func reserializeIPv4Checksum(t *testing.T, ip *layers.IPv4) uint16 {
	t.Helper()
	c := *ip
	buf := gopacket.NewSerializeBuffer()
	if err := c.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatalf("gopacket IPv4 SerializeTo: %v", err)
	}
	return c.Checksum
}

func ipSrc(a netip.Addr) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if got, _ := netip.AddrFromSlice(d.ip.SrcIP); got != a {
			t.Errorf("IPv4 source %v, want %v", got, a)
		}
	}
}

func ipDst(a netip.Addr) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if got, _ := netip.AddrFromSlice(d.ip.DstIP); got != a {
			t.Errorf("IPv4 destination %v, want %v", got, a)
		}
	}
}

// ports returns the transport ports gopacket decoded.
func (d *decoded) ports(t *testing.T) (src, dst uint16) {
	t.Helper()
	switch {
	case d.tcp != nil:
		return uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
	case d.udp != nil:
		return uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
	case d.ip.FragOffset == 0 && len(d.ip.Payload) >= 4:
		// A first fragment, which gopacket does not decode further.
		return binary.BigEndian.Uint16(d.ip.Payload), binary.BigEndian.Uint16(d.ip.Payload[2:])
	}
	t.Fatalf("no TCP or UDP layer in %v", d.pkt)
	return 0, 0
}

// src asserts source address and port.
func src(ap netip.AddrPort) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		ipSrc(ap.Addr())(t, d)
		if p, _ := d.ports(t); p != ap.Port() {
			t.Errorf("source port %d, want %d", p, ap.Port())
		}
	}
}

// dst asserts destination address and port.
func dst(ap netip.AddrPort) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		ipDst(ap.Addr())(t, d)
		if _, p := d.ports(t); p != ap.Port() {
			t.Errorf("destination port %d, want %d", p, ap.Port())
		}
	}
}

func ttl(n uint8) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if d.ip.TTL != n {
			t.Errorf("TTL %d, want %d", d.ip.TTL, n)
		}
	}
}

// udpNoChecksum asserts a UDP checksum field of 0.
func udpNoChecksum() check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if d.udp == nil || d.udp.Checksum != 0 {
			t.Errorf("UDP checksum present, want none (0): %v", d.udp)
		}
	}
}

// udpChecksum asserts the UDP checksum field's value.
func udpChecksum(x uint16) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if d.udp == nil || d.udp.Checksum != x {
			t.Errorf("UDP checksum field %v, want %#04x", d.udp, x)
		}
	}
}

// l4Payload asserts the transport payload bytes.
func l4Payload(want []byte) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		var got []byte
		if tl := d.pkt.TransportLayer(); tl != nil {
			got = tl.LayerPayload()
		}
		if !bytes.Equal(got, want) {
			t.Errorf("transport payload changed (%d bytes, want %d)", len(got), len(want))
		}
	}
}

func icmpType(typ, code uint8) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if d.icmp == nil || d.icmp.TypeCode.Type() != typ || d.icmp.TypeCode.Code() != code {
			t.Errorf("ICMP %v, want type %d code %d", d.icmp, typ, code)
		}
	}
}

// quoted asserts the endpoints of an ICMP error's quote.
func quoted(s, ds netip.AddrPort) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if d.inner == nil {
			t.Fatalf("no quote in %v", d.pkt)
		}
		qs, _ := netip.AddrFromSlice(d.inner.SrcIP)
		qd, _ := netip.AddrFromSlice(d.inner.DstIP)
		got := [2]netip.AddrPort{
			netip.AddrPortFrom(qs, binary.BigEndian.Uint16(d.innerL4[0:])),
			netip.AddrPortFrom(qd, binary.BigEndian.Uint16(d.innerL4[2:])),
		}
		if got != [2]netip.AddrPort{s, ds} {
			t.Errorf("quote %v→%v, want %v→%v", got[0], got[1], s, ds)
		}
	}
}

// icmpBytes asserts bytes of the ICMP message from offset at.
func icmpBytes(at int, want []byte) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		m := ipOf(d.frame).Payload()
		if !bytes.Equal(m[at:at+len(want)], want) {
			t.Errorf("ICMP bytes at %d: %x, want %x", at, m[at:at+len(want)], want)
		}
	}
}

func macs(s, ds [6]byte) check {
	return func(t *testing.T, d *decoded) {
		t.Helper()
		if !bytes.Equal(d.eth.SrcMAC, s[:]) || !bytes.Equal(d.eth.DstMAC, ds[:]) {
			t.Errorf("MACs %v→%v, want %x→%x", d.eth.SrcMAC, d.eth.DstMAC, s, ds)
		}
	}
}
