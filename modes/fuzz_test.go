package modes

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/uvs-project/uvs/header"
)

// Every rewriter has a fuzz target that feeds it whatever passes the
// IsValid gates, first made internally consistent (valid checksums, or a
// partial sum), and checks that every checksum is still right after the
// rewrite. Checked-in seeds live under testdata/fuzz/<FuzzName>/ and are
// written by TestWriteFuzzSeeds from the packet builders.

// fuzzFrames are the builders' packets, from the IP header on.
func fuzzFrames(tb testing.TB) [][]byte {
	var ack uint8 = header.TCPFlagAck
	var frames [][]byte
	for _, f := range [][]byte{
		tcp4(tb, client, vip, header.TCPFlagSyn),
		tcp4(tb, rip, client, ack, payload(100), ipOptions()),
		udp4(tb, client, vip, payload(33)),
		udp4(tb, client, vip, noUDPChecksum()),
		udp4(tb, client, vip, payload(64), fragment(true, 0)),
		udp4(tb, client, vip, payload(64), fragment(false, 64)),
		echo4(tb, client.Addr(), vip.Addr(), 1, 2, 9),
		icmpErr4(tb, rip.Addr(), client.Addr(), 3, 4, tcp4(tb, client, rip, ack, payload(1400)), quoteLenRFC792),
		icmpErr4(tb, router, client.Addr(), 11, 0, udp4(tb, client, rip, payload(20)), 576),
		icmpErr4(tb, client.Addr(), vip.Addr(), 3, 3, tcp4(tb, vip, client, ack, ipOptions()), 40),
	} {
		frames = append(frames, []byte(ipOf(f)))
	}
	return frames
}

// fuzzIPv4 gates b like the dataplane does and fixes its header checksum.
func fuzzIPv4(b []byte) (header.IPv4, bool) {
	ip := header.IPv4(b)
	if !ip.IsValid(len(b)) {
		return nil, false
	}
	ip.SetChecksum(ip.CalculateChecksum())
	return ip, true
}

func fuzzRewrite(t *testing.T, b []byte, addr uint32, port uint16, partial bool,
	fn func(header.IPv4, CsumMode, [4]byte, uint16), portOff int, getAddr func(header.IPv4) [4]byte) {
	ip, ok := fuzzIPv4(b)
	if !ok {
		return
	}
	mode := CsumFull
	if partial {
		mode = CsumPartial
	}
	var to [4]byte
	binary.BigEndian.PutUint32(to[:], addr)

	// What the rewriter may touch: the ports of an unfragmented or first
	// fragment's TCP/UDP header; the checksum can only be verified when
	// the packet is whole.
	hl := ip.HeaderLength()
	l4 := ip.Payload()
	csumOff, hdrLen := -1, 0
	if ip.FragmentOffset() == 0 {
		switch {
		case ip.Protocol() == header.ProtoTCP && len(l4) >= header.TCPMinimumSize:
			csumOff, hdrLen = header.TCPChecksumOffset, header.TCPMinimumSize
		case ip.Protocol() == header.ProtoUDP && len(l4) >= header.UDPSize:
			csumOff, hdrLen = header.UDPChecksumOffset, header.UDPSize
		}
	}
	whole := csumOff >= 0 && !ip.IsFragment()
	udp := ip.Protocol() == header.ProtoUDP
	noCsum := false
	if whole {
		switch {
		case partial:
			binary.BigEndian.PutUint16(l4[csumOff:], refPseudo(ip))
		case udp && binary.BigEndian.Uint16(l4[csumOff:]) == 0:
			noCsum = true
		default:
			binary.BigEndian.PutUint16(l4[csumOff:], 0)
			x := ^refSum(l4, refPseudo(ip))
			if udp && x == 0 {
				x = 0xffff
			}
			binary.BigEndian.PutUint16(l4[csumOff:], x)
		}
	}
	before := bytes.Clone(b)

	fn(ip, mode, to, port)

	if s := refSum(ip[:hl], 0); s != 0xffff {
		t.Fatalf("IPv4 header checksum invalid after rewrite (sum %#04x)", s)
	}
	if getAddr(ip) != to {
		t.Fatalf("address %v, want %v", getAddr(ip), to)
	}
	if csumOff < 0 {
		if !bytes.Equal(b[hl:], before[hl:]) {
			t.Fatal("payload of a packet without ports changed")
		}
		return
	}
	if got := binary.BigEndian.Uint16(l4[portOff:]); got != port {
		t.Fatalf("port %d, want %d", got, port)
	}
	// Outside the ports and the checksum, nothing beyond the IP header moves.
	for i := hl; i < len(b); i++ {
		j := i - hl
		if j >= hdrLen || (j != portOff && j != portOff+1 && j != csumOff && j != csumOff+1) {
			if b[i] != before[i] {
				t.Fatalf("byte %d of the transport header/payload changed", j)
			}
		}
	}
	if !whole {
		return
	}
	x := binary.BigEndian.Uint16(l4[csumOff:])
	switch {
	case partial:
		if want := refPseudo(ip); x != want {
			t.Fatalf("partial sum %#04x, want pseudo-header sum %#04x", x, want)
		}
	case noCsum:
		if x != 0 {
			t.Fatalf("UDP without checksum got checksum %#04x", x)
		}
	default:
		if s := refSum(l4, refPseudo(ip)); s != 0xffff {
			t.Fatalf("transport checksum %#04x invalid after rewrite (sum %#04x)", x, s)
		}
		if udp && x == 0 {
			t.Fatal("UDP checksum became 0 (no checksum)")
		}
	}
}

func addSeeds(f *testing.F) {
	for i, b := range fuzzFrames(f) {
		f.Add(b, uint32(0x0a00000b+i), uint16(8080+i), i%2 == 0)
	}
}

func FuzzRewriteDst(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, addr uint32, port uint16, partial bool) {
		fuzzRewrite(t, b, addr, port, partial, RewriteDst, dstPort, header.IPv4.Dst)
	})
}

func FuzzRewriteSrc(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, addr uint32, port uint16, partial bool) {
		fuzzRewrite(t, b, addr, port, partial, RewriteSrc, srcPort, header.IPv4.Src)
	})
}

func FuzzICMPErrorQuote(f *testing.F) {
	for _, b := range fuzzFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, ok := fuzzIPv4(b)
		if !ok {
			return
		}
		inner, l4, ok := ICMPErrorQuote(ip)
		if !ok {
			return
		}
		hl := inner.HeaderLength()
		if hl < header.IPv4MinimumSize || len(inner) != hl+8 || len(l4) != 8 || &inner[hl] != &l4[0] {
			t.Fatalf("quote: inner %d bytes, header %d, l4 %d bytes", len(inner), hl, len(l4))
		}
		if p := inner.Protocol(); p != header.ProtoTCP && p != header.ProtoUDP {
			t.Fatalf("quoted protocol %d", p)
		}
		_ = inner.Payload()
	})
}

// fuzzICMP makes an ICMP error's checksums valid (outer header already is)
// and returns its parts; ok is false when there is no quote.
func fuzzICMP(ip header.IPv4) (m header.ICMPv4, inner header.IPv4, l4 []byte, ok bool) {
	inner, l4, ok = ICMPErrorQuote(ip)
	if !ok {
		return nil, nil, nil, false
	}
	inner.SetChecksum(inner.CalculateChecksum())
	m = header.ICMPv4(ip.Payload())
	m.SetChecksum(m.CalculateChecksum())
	return m, inner, l4, true
}

func checkICMPSums(t *testing.T, ip header.IPv4, m header.ICMPv4, inner header.IPv4) {
	t.Helper()
	if s := refSum(ip[:ip.HeaderLength()], 0); s != 0xffff {
		t.Fatalf("outer header checksum invalid (sum %#04x)", s)
	}
	if s := refSum(inner[:inner.HeaderLength()], 0); s != 0xffff {
		t.Fatalf("quoted header checksum invalid (sum %#04x)", s)
	}
	if s := refSum(m, 0); s != 0xffff {
		t.Fatalf("ICMP checksum invalid (sum %#04x)", s)
	}
}

func FuzzNATICMPOut(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, addr uint32, port uint16, _ bool) {
		ip, ok := fuzzIPv4(b)
		if !ok {
			return
		}
		var to [4]byte
		binary.BigEndian.PutUint32(to[:], addr)
		m, inner, l4, ok := fuzzICMP(ip)
		if !ok {
			before := bytes.Clone(b)
			if NATICMPOut(ip, to, port) || !bytes.Equal(b, before) {
				t.Fatal("no quote, yet NATICMPOut reported or made a change")
			}
			return
		}
		outerSrc, outerDst, quotedDst := ip.Src(), ip.Dst(), inner.Dst()
		if !NATICMPOut(ip, to, port) {
			t.Fatal("NATICMPOut not ok on a quote ICMPErrorQuote accepts")
		}
		checkICMPSums(t, ip, m, inner)
		wantSrc := outerSrc
		if outerSrc == quotedDst {
			wantSrc = to
		}
		if inner.Dst() != to || binary.BigEndian.Uint16(l4[2:]) != port || ip.Src() != wantSrc || ip.Dst() != outerDst {
			t.Fatalf("after: outer %v→%v quote dst %v:%d", ip.Src(), ip.Dst(), inner.Dst(), binary.BigEndian.Uint16(l4[2:]))
		}
	})
}

func FuzzNATICMPIn(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte, addr uint32, port uint16, _ bool) {
		ip, ok := fuzzIPv4(b)
		if !ok {
			return
		}
		var to [4]byte
		binary.BigEndian.PutUint32(to[:], addr)
		m, inner, l4, ok := fuzzICMP(ip)
		if !ok {
			before := bytes.Clone(b)
			if NATICMPIn(ip, to, port) || !bytes.Equal(b, before) {
				t.Fatal("no quote, yet NATICMPIn reported or made a change")
			}
			return
		}
		outerSrc := ip.Src()
		if !NATICMPIn(ip, to, port) {
			t.Fatal("NATICMPIn not ok on a quote ICMPErrorQuote accepts")
		}
		checkICMPSums(t, ip, m, inner)
		if inner.Src() != to || binary.BigEndian.Uint16(l4[0:]) != port || ip.Dst() != to || ip.Src() != outerSrc {
			t.Fatalf("after: outer %v→%v quote src %v:%d", ip.Src(), ip.Dst(), inner.Src(), binary.BigEndian.Uint16(l4[0:]))
		}
	})
}

func FuzzEchoReply(f *testing.F) {
	eth := make([]byte, header.EthernetMinimumSize)
	header.Ethernet(eth).SetSrc(macClient)
	header.Ethernet(eth).SetDst(macDirector)
	header.Ethernet(eth).SetType(header.EtherTypeIPv4)
	for _, b := range fuzzFrames(f) {
		f.Add(append(bytes.Clone(eth), b...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e := header.Ethernet(b)
		if !e.IsValid() {
			return
		}
		ip, ok := fuzzIPv4(e.Payload())
		if !ok {
			return
		}
		m := header.ICMPv4(ip.Payload())
		if ip.Protocol() == header.ProtoICMP && m.IsValid() {
			m.SetChecksum(m.CalculateChecksum())
		}
		before := bytes.Clone(b)
		if !EchoReply(e, ip) {
			if !bytes.Equal(b, before) {
				t.Fatal("not ok, but the frame changed")
			}
			return
		}
		bip := header.IPv4(before[header.EthernetMinimumSize:])
		be := header.Ethernet(before)
		if e.Src() != be.Dst() || e.Dst() != be.Src() || ip.Src() != bip.Dst() || ip.Dst() != bip.Src() ||
			ip.TTL() != echoTTL || m.Type() != header.ICMPv4EchoReply || m.Code() != 0 {
			t.Fatal("not a reply")
		}
		if s := refSum(ip[:ip.HeaderLength()], 0); s != 0xffff {
			t.Fatalf("IPv4 header checksum invalid (sum %#04x)", s)
		}
		if s := refSum(m, 0); s != 0xffff {
			t.Fatalf("ICMP checksum invalid (sum %#04x)", s)
		}
		if !bytes.Equal(m[4:], header.ICMPv4(bip.Payload())[4:]) {
			t.Fatal("identifier, sequence number or data changed")
		}
	})
}
