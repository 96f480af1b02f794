package modes

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/header"
)

// quoteLenRFC792 is what RFC 792 asks a router to quote: the IP header and
// 8 bytes; RFC 1812 routers quote as much as fits in 576 bytes.
const quoteLenRFC792 = 28

// clientSide is a router on the clients' side of the director.
var clientSide = netip.MustParseAddr("198.51.100.1")

// asFragment marks a frame's IPv4 packet as a first fragment and fixes its
// header checksum.
func asFragment(f []byte) []byte {
	ip := ipOf(f)
	ip[6] |= 0x20 // MF
	ip.SetChecksum(ip.CalculateChecksum())
	return f
}

func TestICMPErrorQuote(t *testing.T) {
	var ack uint8 = header.TCPFlagAck
	seg := tcp4(t, client, rip, ack, payload(1400))
	segOpts := tcp4(t, client, rip, ack, ipOptions(), payload(10))
	for _, tt := range []struct {
		name     string
		in       []byte
		ok       bool
		src, dst netip.AddrPort
		hl       int
	}{
		{"frag needed", icmpErr4(t, rip.Addr(), client.Addr(), 3, 4, seg, quoteLenRFC792), true, client, rip, 20},
		{"port unreachable udp", icmpErr4(t, rip.Addr(), client.Addr(), 3, 3, udp4(t, client, rip, payload(9)), 576), true, client, rip, 20},
		{"time exceeded", icmpErr4(t, router, client.Addr(), 11, 0, seg, 576), true, client, rip, 20},
		{"source quench", icmpErr4(t, router, client.Addr(), 4, 0, seg, quoteLenRFC792), true, client, rip, 20},
		{"param problem", icmpErr4(t, router, client.Addr(), 12, 0, seg, quoteLenRFC792), true, client, rip, 20},
		{"quoted ip options", icmpErr4(t, router, client.Addr(), 11, 0, segOpts, quoteLenRFC792+4), true, client, rip, 24},
		{"quote one byte short", icmpErr4(t, router, client.Addr(), 11, 0, segOpts, quoteLenRFC792+3), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"quote 27 bytes", icmpErr4(t, router, client.Addr(), 3, 1, seg, 27), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"quote 19 bytes", icmpErr4(t, router, client.Addr(), 3, 1, seg, 19), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"no quote", icmpErr4(t, router, client.Addr(), 3, 1, seg, 0), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"redirect", icmpErr4(t, router, client.Addr(), 5, 1, seg, quoteLenRFC792), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"echo request", echo4(t, client.Addr(), vip.Addr(), 1, 1, 64), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"quotes icmp", icmpErr4(t, router, client.Addr(), 11, 0, echo4(t, client.Addr(), rip.Addr(), 1, 1, 8), 576), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"quotes later fragment", icmpErr4(t, router, client.Addr(), 11, 1, udp4(t, client, rip, payload(64), fragment(false, 8)), 576), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"outer fragment", asFragment(icmpErr4(t, router, client.Addr(), 11, 0, seg, 576)), false, netip.AddrPort{}, netip.AddrPort{}, 0},
		{"tcp", seg, false, netip.AddrPort{}, netip.AddrPort{}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ip := ipOf(tt.in)
			if !ip.IsValid(len(ip)) {
				t.Fatal("test frame fails IsValid")
			}
			inner, l4, ok := ICMPErrorQuote(ip)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				if inner != nil || l4 != nil {
					t.Fatal("not ok but returned slices")
				}
				return
			}
			if len(inner) != tt.hl+8 || cap(inner) != tt.hl+8 || inner.HeaderLength() != tt.hl || len(l4) != 8 || cap(l4) != 8 {
				t.Fatalf("inner %d bytes (cap %d, header %d), l4 %d bytes (cap %d)", len(inner), cap(inner), inner.HeaderLength(), len(l4), cap(l4))
			}
			gotSrc := netip.AddrPortFrom(netip.AddrFrom4(inner.Src()), header.TCP(l4).SrcPort())
			gotDst := netip.AddrPortFrom(netip.AddrFrom4(inner.Dst()), header.TCP(l4).DstPort())
			if gotSrc != tt.src || gotDst != tt.dst {
				t.Errorf("quote %v→%v, want %v→%v", gotSrc, gotDst, tt.src, tt.dst)
			}
			if len(inner.Payload()) != 8 {
				t.Errorf("inner.Payload() %d bytes, want the 8 quoted", len(inner.Payload()))
			}
		})
	}
}

// icmpCase is one golden packet for NATICMPOut or NATICMPIn.
type icmpCase struct {
	name string
	in   []byte
	ok   bool
	want []check
}

func (tc icmpCase) run(t *testing.T, fn func(header.IPv4) bool) {
	t.Helper()
	f := bytes.Clone(tc.in)
	if ok := fn(ipOf(f)); ok != tc.ok {
		t.Fatalf("ok = %v, want %v", ok, tc.ok)
	}
	if !tc.ok && !bytes.Equal(f, tc.in) {
		t.Fatal("not ok, but the frame changed")
	}
	checkFrame(t, f, tc.want...)
}

func TestNATICMPOut(t *testing.T) {
	var ack uint8 = header.TCPFlagAck
	// What the real server received: NATIn's output, client→RIP:rport.
	seg := tcp4(t, client, rip, ack, payload(1400))
	dgram := udp4(t, client, rip, payload(200))
	mtu := []byte{0x05, 0x78}
	for _, tc := range []icmpCase{
		{"frag needed from the real server", icmpErr4(t, rip.Addr(), client.Addr(), 3, 4, seg, quoteLenRFC792), true,
			[]check{ipSrc(vip.Addr()), ipDst(client.Addr()), icmpType(3, 4), icmpBytes(6, mtu), quoted(client, vip)}},
		{"frag needed from a router keeps its source", icmpErr4(t, router, client.Addr(), 3, 4, seg, quoteLenRFC792), true,
			[]check{ipSrc(router), ipDst(client.Addr()), icmpType(3, 4), icmpBytes(6, mtu), quoted(client, vip)}},
		{"time exceeded, RFC 1812 long quote", icmpErr4(t, router, client.Addr(), 11, 0, seg, 576), true,
			[]check{ipSrc(router), icmpType(11, 0), quoted(client, vip)}},
		{"port unreachable udp, whole datagram quoted", icmpErr4(t, rip.Addr(), client.Addr(), 3, 3, dgram, 576), true,
			[]check{ipSrc(vip.Addr()), icmpType(3, 3), quoted(client, vip)}},
		{"quoted ip options", icmpErr4(t, rip.Addr(), client.Addr(), 3, 4, tcp4(t, client, rip, ack, ipOptions()), 32), true,
			[]check{ipSrc(vip.Addr()), quoted(client, vip)}},
		{"source quench", icmpErr4(t, rip.Addr(), client.Addr(), 4, 0, seg, quoteLenRFC792), true,
			[]check{ipSrc(vip.Addr()), quoted(client, vip)}},
		{"param problem", icmpErr4(t, router, client.Addr(), 12, 0, seg, quoteLenRFC792), true,
			[]check{ipSrc(router), quoted(client, vip)}},
		{"redirect untouched", icmpErr4(t, router, client.Addr(), 5, 1, seg, quoteLenRFC792), false,
			[]check{ipSrc(router), quoted(client, rip)}},
		{"short quote untouched", icmpErr4(t, rip.Addr(), client.Addr(), 3, 4, seg, 27), false,
			[]check{ipSrc(rip.Addr())}},
		{"echo untouched", echo4(t, rip.Addr(), client.Addr(), 1, 1, 8), false,
			[]check{ipSrc(rip.Addr()), icmpType(8, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, func(ip header.IPv4) bool { return NATICMPOut(ip, a4(vip.Addr()), vip.Port()) })
		})
	}
}

func TestNATICMPIn(t *testing.T) {
	var ack uint8 = header.TCPFlagAck
	// What the client received: NATOut's output, VIP:vport→client.
	seg := tcp4(t, vip, client, ack, payload(1400))
	dgram := udp4(t, vip, client, payload(30))
	for _, tc := range []icmpCase{
		{"frag needed from the client", icmpErr4(t, client.Addr(), vip.Addr(), 3, 4, seg, quoteLenRFC792), true,
			[]check{ipSrc(client.Addr()), ipDst(rip.Addr()), icmpType(3, 4), icmpBytes(6, []byte{0x05, 0x78}), quoted(rip, client)}},
		{"time exceeded from a client-side router", icmpErr4(t, clientSide, vip.Addr(), 11, 0, seg, 576), true,
			[]check{ipSrc(clientSide), ipDst(rip.Addr()), quoted(rip, client)}},
		{"port unreachable udp", icmpErr4(t, client.Addr(), vip.Addr(), 3, 3, dgram, 576), true,
			[]check{ipSrc(client.Addr()), ipDst(rip.Addr()), quoted(rip, client)}},
		{"quoted ip options", icmpErr4(t, client.Addr(), vip.Addr(), 3, 3, tcp4(t, vip, client, ack, ipOptions()), 40), true,
			[]check{ipDst(rip.Addr()), quoted(rip, client)}},
		{"not an error untouched", echo4(t, client.Addr(), vip.Addr(), 1, 1, 8), false,
			[]check{ipDst(vip.Addr())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, func(ip header.IPv4) bool { return NATICMPIn(ip, a4(rip.Addr()), rip.Port()) })
		})
	}
}

// TestNATICMPRoundTrip translates in and back out and wants the original
// bytes (the outer source is the VIP's peer here, so only the quote and
// the outer destination move).
func TestNATICMPRoundTrip(t *testing.T) {
	in := icmpErr4(t, client.Addr(), vip.Addr(), 3, 4, tcp4(t, vip, client, header.TCPFlagAck, payload(10)), 576)
	f := bytes.Clone(in)
	ip := ipOf(f)
	if !NATICMPIn(ip, a4(rip.Addr()), rip.Port()) {
		t.Fatal("NATICMPIn not ok")
	}
	if !NATICMPIn(ip, a4(vip.Addr()), vip.Port()) {
		t.Fatal("NATICMPIn back not ok")
	}
	if !bytes.Equal(f, in) {
		t.Fatal("round trip changed the frame")
	}
}

func TestEchoReply(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		ok   bool
		want []check
	}{
		{"echo", echo4(t, client.Addr(), vip.Addr(), 0x1234, 7, 56), true,
			[]check{macs(macDirector, macClient), ipSrc(vip.Addr()), ipDst(client.Addr()), ttl(64), icmpType(0, 0),
				icmpBytes(4, []byte{0x12, 0x34, 0, 7}), icmpBytes(8, pattern(56))}},
		{"odd data, ip options", echo4(t, client.Addr(), vip.Addr(), 1, 65535, 1001, ipOptions()), true,
			[]check{ipSrc(vip.Addr()), ipDst(client.Addr()), ttl(64), icmpType(0, 0), icmpBytes(8, pattern(1001))}},
		{"all-zero reply", echo4(t, client.Addr(), vip.Addr(), 0, 0, 0), true,
			[]check{ttl(64), icmpType(0, 0)}},
		{"fragmented echo untouched", asFragment(echo4(t, client.Addr(), vip.Addr(), 1, 1, 64)), false,
			[]check{ipSrc(client.Addr()), icmpBytes(0, []byte{8, 0})}},
		{"echo reply untouched", echoReplyFrame(t), false,
			[]check{icmpType(0, 0)}},
		{"tcp untouched", tcp4(t, client, vip, header.TCPFlagSyn), false,
			[]check{src(client), dst(vip)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := bytes.Clone(tt.in)
			if ok := EchoReply(header.Ethernet(f), ipOf(f)); ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !tt.ok && !bytes.Equal(f, tt.in) {
				t.Fatal("not ok, but the frame changed")
			}
			checkFrame(t, f, tt.want...)
		})
	}
}

func echoReplyFrame(t *testing.T) []byte {
	f := echo4(t, client.Addr(), vip.Addr(), 1, 1, 8)
	if !EchoReply(header.Ethernet(f), ipOf(f)) {
		t.Fatal("EchoReply not ok")
	}
	return f
}
