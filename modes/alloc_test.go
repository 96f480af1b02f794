package modes

import (
	"bytes"
	"testing"

	"github.com/uvs-project/uvs/header"
)

// The rewrites run once per packet: they must not allocate.
func TestZeroAllocs(t *testing.T) {
	seg := ipOf(tcp4(t, client, vip, header.TCPFlagAck, payload(100)))
	dgram := ipOf(udp4(t, rip, client, payload(100)))
	errOut := ipOf(icmpErr4(t, rip.Addr(), client.Addr(), 3, 4, tcp4(t, client, rip, header.TCPFlagAck), quoteLenRFC792))
	errIn := ipOf(icmpErr4(t, client.Addr(), vip.Addr(), 3, 4, tcp4(t, vip, client, header.TCPFlagAck), quoteLenRFC792))
	echoFrame := echo4(t, client.Addr(), vip.Addr(), 1, 1, 56)
	echoCopy := bytes.Clone(echoFrame)
	r, v := a4(rip.Addr()), a4(vip.Addr())
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{"RewriteDst full", func() { RewriteDst(seg, CsumFull, r, rip.Port()) }},
		{"RewriteDst partial", func() { RewriteDst(seg, CsumPartial, r, rip.Port()) }},
		{"RewriteSrc full", func() { RewriteSrc(dgram, CsumFull, v, vip.Port()) }},
		{"RewriteSrc partial", func() { RewriteSrc(dgram, CsumPartial, v, vip.Port()) }},
		{"NATIn", func() { NATIn(seg, CsumFull, r, rip.Port()) }},
		{"NATOut", func() { NATOut(dgram, CsumFull, v, vip.Port()) }},
		{"ICMPErrorQuote", func() { ICMPErrorQuote(errOut) }},
		{"NATICMPOut", func() { NATICMPOut(errOut, v, vip.Port()) }},
		{"NATICMPIn", func() { NATICMPIn(errIn, r, rip.Port()) }},
		{"EchoReply", func() {
			copy(echoFrame, echoCopy)
			EchoReply(header.Ethernet(echoFrame), ipOf(echoFrame))
		}},
	} {
		if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, n)
		}
	}
}

// Benchmarks alternate between two targets so that every iteration does a
// real change.

func benchRewrite(b *testing.B, frame []byte, mode CsumMode, fn func(header.IPv4, CsumMode, [4]byte, uint16)) {
	ip := ipOf(frame)
	addrs := [2][4]byte{a4(rip.Addr()), a4(vip.Addr())}
	ports := [2]uint16{rip.Port(), vip.Port()}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		fn(ip, mode, addrs[i&1], ports[i&1])
		i++
	}
}

func BenchmarkRewriteDst(b *testing.B) {
	var ack uint8 = header.TCPFlagAck
	b.Run("tcp/full", func(b *testing.B) { benchRewrite(b, tcp4(b, client, vip, ack, payload(64)), CsumFull, RewriteDst) })
	b.Run("tcp/partial", func(b *testing.B) { benchRewrite(b, tcp4(b, client, vip, ack, payload(64)), CsumPartial, RewriteDst) })
	b.Run("udp/full", func(b *testing.B) { benchRewrite(b, udp4(b, client, vip, payload(64)), CsumFull, RewriteDst) })
	b.Run("tso60000/partial", func(b *testing.B) {
		benchRewrite(b, tcp4(b, client, vip, ack, payload(60000)), CsumPartial, RewriteDst)
	})
}

func BenchmarkRewriteSrc(b *testing.B) {
	var ack uint8 = header.TCPFlagAck
	b.Run("tcp/full", func(b *testing.B) { benchRewrite(b, tcp4(b, rip, client, ack, payload(64)), CsumFull, RewriteSrc) })
	b.Run("tcp/partial", func(b *testing.B) { benchRewrite(b, tcp4(b, rip, client, ack, payload(64)), CsumPartial, RewriteSrc) })
	b.Run("udp/full", func(b *testing.B) { benchRewrite(b, udp4(b, rip, client, payload(64)), CsumFull, RewriteSrc) })
}

func BenchmarkNATICMPOut(b *testing.B) {
	ip := ipOf(icmpErr4(b, rip.Addr(), client.Addr(), 3, 4, tcp4(b, client, rip, header.TCPFlagAck), quoteLenRFC792))
	addrs := [2][4]byte{a4(vip.Addr()), a4(rip.Addr())}
	ports := [2]uint16{vip.Port(), rip.Port()}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		NATICMPOut(ip, addrs[i&1], ports[i&1])
		i++
	}
}

func BenchmarkNATICMPIn(b *testing.B) {
	ip := ipOf(icmpErr4(b, client.Addr(), vip.Addr(), 3, 4, tcp4(b, vip, client, header.TCPFlagAck), quoteLenRFC792))
	addrs := [2][4]byte{a4(rip.Addr()), a4(vip.Addr())}
	ports := [2]uint16{rip.Port(), vip.Port()}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		NATICMPIn(ip, addrs[i&1], ports[i&1])
		i++
	}
}

func BenchmarkEchoReply(b *testing.B) {
	f := echo4(b, client.Addr(), vip.Addr(), 1, 1, 56)
	orig := bytes.Clone(f)
	e, ip := header.Ethernet(f), ipOf(f)
	b.ReportAllocs()
	for b.Loop() {
		copy(f, orig) // includes a 98-byte copy
		EchoReply(e, ip)
	}
}
