package modes

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/header"
)

// rewriteCase is one golden packet for RewriteDst or RewriteSrc.
type rewriteCase struct {
	name string
	in   []byte
	mode CsumMode
	to   netip.AddrPort
	want []check
}

// run rewrites a copy of tc.in with fn and checks it. In partial mode it
// first turns the checksum into a partial one, checks the partial sum
// after the rewrite, and completes it as the kernel would before checking.
func (tc rewriteCase) run(t *testing.T, fn func(header.IPv4, CsumMode, [4]byte, uint16)) {
	t.Helper()
	f := bytes.Clone(tc.in)
	ip := ipOf(f)
	partial := tc.mode == CsumPartial
	if partial {
		makePartial(t, f)
	}
	fn(ip, tc.mode, a4(tc.to.Addr()), tc.to.Port())
	if partial {
		if got, want := binary.BigEndian.Uint16(ip.Payload()[l4CsumOff(t, ip):]), refPseudo(ip); got != want {
			t.Errorf("partial sum after rewrite %#04x, want pseudo-header sum %#04x", got, want)
		}
		complete(t, f)
	}
	checkFrame(t, f, tc.want...)
}

func TestRewriteDst(t *testing.T) {
	var syn uint8 = header.TCPFlagSyn
	var ack uint8 = header.TCPFlagAck | header.TCPFlagPsh
	big := tcp4(t, client, vip, ack, payload(60000))
	for _, tc := range []rewriteCase{
		{name: "tcp syn full", in: tcp4(t, client, vip, syn), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip), ttl(63)}},
		{name: "tcp syn partial", in: tcp4(t, client, vip, syn), mode: CsumPartial, to: rip,
			want: []check{src(client), dst(rip)}},
		{name: "tcp data full", in: tcp4(t, client, vip, ack, payload(1448)), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip), l4Payload(pattern(1448))}},
		{name: "tcp odd payload partial", in: tcp4(t, client, vip, ack, payload(333)), mode: CsumPartial, to: rip,
			want: []check{src(client), dst(rip), l4Payload(pattern(333))}},
		{name: "tcp ip options full", in: tcp4(t, client, vip, ack, ipOptions(), payload(10)), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip)}},
		{name: "tcp ip options partial", in: tcp4(t, client, vip, ack, ipOptions(), payload(10)), mode: CsumPartial, to: rip,
			want: []check{src(client), dst(rip)}},
		{name: "tso super-frame full", in: big, mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip), l4Payload(pattern(60000))}},
		{name: "tso super-frame partial", in: big, mode: CsumPartial, to: rip,
			want: []check{src(client), dst(rip), l4Payload(pattern(60000))}},
		{name: "same port full", in: tcp4(t, client, vip, ack), mode: CsumFull, to: netip.AddrPortFrom(rip.Addr(), vip.Port()),
			want: []check{dst(netip.AddrPortFrom(rip.Addr(), vip.Port()))}},
		{name: "same endpoint full", in: tcp4(t, client, vip, ack), mode: CsumFull, to: vip,
			want: []check{dst(vip)}},
		{name: "udp full", in: udp4(t, client, vip, payload(100)), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip), l4Payload(pattern(100))}},
		{name: "udp partial", in: udp4(t, client, vip, payload(101)), mode: CsumPartial, to: rip,
			want: []check{src(client), dst(rip)}},
		{name: "udp no checksum stays none", in: udp4(t, client, vip, payload(5), noUDPChecksum()), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip), udpNoChecksum()}},
		{name: "udp computed zero sent as ffff", in: udpZeroAfter(t, rip), mode: CsumFull, to: rip,
			want: []check{dst(rip), udpChecksum(0xffff)}},
		{name: "udp first fragment", in: udp4(t, client, vip, payload(64), fragment(true, 0)), mode: CsumFull, to: rip,
			want: []check{src(client), dst(rip)}},
		{name: "udp later fragment: address only", in: udp4(t, client, vip, payload(64), fragment(false, 1480)), mode: CsumFull, to: rip,
			want: []check{ipSrc(client.Addr()), ipDst(rip.Addr())}},
		{name: "icmp echo: address only", in: echo4(t, client.Addr(), vip.Addr(), 1, 2, 56), mode: CsumFull, to: rip,
			want: []check{ipDst(rip.Addr()), icmpType(header.ICMPv4Echo, 0), icmpBytes(4, []byte{0, 1, 0, 2})}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, RewriteDst) })
		t.Run("NATIn/"+tc.name, func(t *testing.T) { tc.run(t, NATIn) })
	}
}

func TestRewriteSrc(t *testing.T) {
	var ack uint8 = header.TCPFlagAck
	big := tcp4(t, rip, client, ack, payload(60000))
	for _, tc := range []rewriteCase{
		{name: "tcp synack full", in: tcp4(t, rip, client, ack|header.TCPFlagSyn), mode: CsumFull, to: vip,
			want: []check{src(vip), dst(client)}},
		{name: "tcp synack partial", in: tcp4(t, rip, client, ack|header.TCPFlagSyn), mode: CsumPartial, to: vip,
			want: []check{src(vip), dst(client)}},
		{name: "tcp data full", in: tcp4(t, rip, client, ack, payload(1000)), mode: CsumFull, to: vip,
			want: []check{src(vip), dst(client), l4Payload(pattern(1000))}},
		{name: "tcp fin partial ip options", in: tcp4(t, rip, client, ack|header.TCPFlagFin, ipOptions()), mode: CsumPartial, to: vip,
			want: []check{src(vip), dst(client)}},
		{name: "tso super-frame full", in: big, mode: CsumFull, to: vip,
			want: []check{src(vip), dst(client), l4Payload(pattern(60000))}},
		{name: "tso super-frame partial", in: big, mode: CsumPartial, to: vip,
			want: []check{src(vip), dst(client), l4Payload(pattern(60000))}},
		{name: "udp full", in: udp4(t, rip, client, payload(7)), mode: CsumFull, to: vip,
			want: []check{src(vip), dst(client)}},
		{name: "udp partial", in: udp4(t, rip, client, payload(1472)), mode: CsumPartial, to: vip,
			want: []check{src(vip), dst(client)}},
		{name: "udp no checksum stays none", in: udp4(t, rip, client, noUDPChecksum()), mode: CsumFull, to: vip,
			want: []check{src(vip), dst(client), udpNoChecksum()}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, RewriteSrc) })
		t.Run("NATOut/"+tc.name, func(t *testing.T) { tc.run(t, NATOut) })
	}
}

// udpZeroAfter builds a client→VIP datagram whose payload is chosen so
// that, after its destination becomes to, its checksum computes to 0
// (then sent as 0xffff): the one case where an incremental update must
// turn +0 into -0 for UDP.
func udpZeroAfter(t *testing.T, to netip.AddrPort) []byte {
	f := udp4(t, client, vip, payload(2))
	ip := ipOf(f)
	u := header.UDP(ip.Payload())
	// The sum after the rewrite with payload word and checksum 0 ...
	after := bytes.Clone(f)
	aip := ipOf(after)
	aip.SetDst(a4(to.Addr()))
	au := header.UDP(aip.Payload())
	au.SetDstPort(to.Port())
	au.SetChecksum(0)
	binary.BigEndian.PutUint16(au[8:], 0)
	s := refSum(au, refPseudo(aip))
	// ... plus the payload word must be 0xffff, so that the checksum is
	// ^0xffff = 0.
	binary.BigEndian.PutUint16(u[8:], ^s)
	u.SetChecksum(0)
	x := ^refSum(u, refPseudo(ip))
	if x == 0 {
		x = 0xffff
	}
	u.SetChecksum(x)
	return f
}

// TestRewriteRoundTrip rewrites there and back and wants the original
// bytes: incremental updates are exact, not merely valid.
func TestRewriteRoundTrip(t *testing.T) {
	frames := map[string][]byte{
		"tcp":  tcp4(t, client, vip, header.TCPFlagAck, payload(100)),
		"udp":  udp4(t, client, vip, payload(99)),
		"tso":  tcp4(t, client, vip, header.TCPFlagAck, payload(60000)),
		"opts": tcp4(t, client, vip, header.TCPFlagSyn, ipOptions()),
	}
	for name, in := range frames {
		for _, mode := range []CsumMode{CsumFull, CsumPartial} {
			f := bytes.Clone(in)
			if mode == CsumPartial {
				makePartial(t, f)
			}
			want := bytes.Clone(f)
			ip := ipOf(f)
			RewriteDst(ip, mode, a4(rip.Addr()), rip.Port())
			RewriteSrc(ip, mode, a4(router), 1)
			RewriteSrc(ip, mode, a4(client.Addr()), client.Port())
			RewriteDst(ip, mode, a4(vip.Addr()), vip.Port())
			if !bytes.Equal(f, want) {
				t.Errorf("%s %v: round trip changed the frame", name, mode)
			}
		}
	}
}

// TestFullNATComposes uses both building blocks on one packet, as FULLNAT
// will: client:cport→VIP:vport becomes LIP:lport→RIP:rport.
func TestFullNATComposes(t *testing.T) {
	lip := netip.MustParseAddrPort("10.0.0.2:61000")
	for _, mode := range []CsumMode{CsumFull, CsumPartial} {
		rewriteCase{in: tcp4(t, client, vip, header.TCPFlagSyn), mode: mode, to: rip, want: []check{src(lip), dst(rip)}}.
			run(t, func(ip header.IPv4, m CsumMode, _ [4]byte, _ uint16) {
				RewriteDst(ip, m, a4(rip.Addr()), rip.Port())
				RewriteSrc(ip, m, a4(lip.Addr()), lip.Port())
			})
	}
}

// TestModeMismatchIsCaught shows the harness catches the mistake NOTES.md
// item 1 warns about: a partial checksum updated as if it were full (the
// port change folded in) no longer completes to a valid checksum, and a
// full one updated as partial is wrong too.
func TestModeMismatchIsCaught(t *testing.T) {
	for _, tt := range []struct {
		name      string
		partial   bool
		applyMode CsumMode
	}{
		{"partial packet treated as full", true, CsumFull},
		{"full packet treated as partial", false, CsumPartial},
	} {
		f := tcp4(t, client, vip, header.TCPFlagSyn)
		if tt.partial {
			makePartial(t, f)
		}
		ip := ipOf(f)
		RewriteDst(ip, tt.applyMode, a4(rip.Addr()), rip.Port())
		if tt.partial {
			complete(t, f)
		}
		if s := refSum(ip.Payload(), refPseudo(ip)); s == 0xffff {
			t.Errorf("%s: checksum still valid; the tests could not catch a mode mix-up", tt.name)
		}
	}
}

func TestModeOf(t *testing.T) {
	h := header.VirtioNetHdr(make([]byte, header.VirtioNetHdrSize))
	if ModeOf(h) != CsumFull {
		t.Error("no flags: want CsumFull")
	}
	h.SetFlags(header.VirtioNetHdrFDataValid)
	if ModeOf(h) != CsumFull {
		t.Error("DATA_VALID: want CsumFull")
	}
	h.SetFlags(header.VirtioNetHdrFNeedsCsum)
	if ModeOf(h) != CsumPartial {
		t.Error("NEEDS_CSUM: want CsumPartial")
	}
	if CsumFull.String() != "full" || CsumPartial.String() != "partial" || CsumMode(7).String() != "CsumMode(7)" {
		t.Error("CsumMode.String")
	}
}
