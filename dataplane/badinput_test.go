package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/header"
)

// Frames the table below builds: a few shapes gopacket serializes, then
// byte surgery for what gopacket would refuse to write.

const ipOff = vnetHdrLen + header.EthernetMinimumSize // the IPv4 header in a buffer

// ipv4Frame builds [vnet | Ethernet | IPv4 | payload] with a valid header
// checksum; the payload is taken as it is.
func ipv4Frame(tb testing.TB, src, dst netip.Addr, dstMAC [6]byte, proto layers.IPProtocol, payload []byte) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: clientMAC[:], DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, gopacket.Payload(payload)); err != nil {
		tb.Fatal(err)
	}
	return append(make([]byte, vnetHdrLen), buf.Bytes()...)
}

// udpFrame builds [vnet | Ethernet | IPv4 | UDP] with valid checksums.
func udpFrame(tb testing.TB, src, dst netip.AddrPort, dstMAC [6]byte, payload int) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: clientMAC[:], DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		tb.Fatal(err)
	}
	return append(make([]byte, vnetHdrLen), buf.Bytes()...)
}

// icmpFrame builds an ICMP message of the given type and code whose body
// (after the 4 bytes of type, code and checksum) is body.
func icmpFrame(tb testing.TB, src, dst netip.Addr, dstMAC [6]byte, typ, code uint8, body []byte) []byte {
	tb.Helper()
	m := append([]byte{typ, code, 0, 0}, body...)
	x := ^header.Checksum(m, 0)
	m[2], m[3] = byte(x>>8), byte(x)
	return ipv4Frame(tb, src, dst, dstMAC, layers.IPProtocolICMPv4, m)
}

// arpRequest is a broadcast who-has for target from the client.
func arpRequest(target netip.Addr) []byte {
	b := make([]byte, vnetHdrLen, vnetHdrLen+header.EthernetMinimumSize+header.ARPSize)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, clientMAC[:]...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(b, clientMAC[:]...)
	b = append(b, cip.Addr().AsSlice()...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, target.AsSlice()...)
}

func ipOf(b []byte) header.IPv4 { return header.IPv4(b[ipOff:]) }

// fixIPSum recomputes the IPv4 header checksum (the header length must be
// at least 12 bytes).
func fixIPSum(b []byte) []byte {
	ip := ipOf(b)
	ip.SetChecksum(ip.CalculateChecksum())
	return b
}

// withFragment sets the flags and fragment offset word.
func withFragment(b []byte, flagsOff uint16) []byte {
	binary.BigEndian.PutUint16(b[ipOff+6:], flagsOff)
	return fixIPSum(b)
}

// withOptions inserts IPv4 options (a multiple of 4 bytes) after the fixed
// header and fixes IHL, total length and the header checksum; the
// transport checksum does not cover them.
func withOptions(b []byte, opts []byte) []byte {
	out := append(bytes.Clone(b[:ipOff+header.IPv4MinimumSize]), opts...)
	out = append(out, b[ipOff+header.IPv4MinimumSize:]...)
	ip := ipOf(out)
	ip[0] = 0x40 | byte((header.IPv4MinimumSize+len(opts))/4)
	ip.SetTotalLength(ip.TotalLength() + uint16(len(opts)))
	return fixIPSum(out)
}

// cutL4 keeps n bytes of the transport header, with the total length to
// match.
func cutL4(b []byte, n int) []byte {
	out := b[:ipOff+header.IPv4MinimumSize+n]
	ipOf(out).SetTotalLength(uint16(header.IPv4MinimumSize + n))
	return fixIPSum(out)
}

// statSnap is every counter of a worker that a single frame may move.
type statSnap struct {
	drops                                         [numDropReasons]uint64
	rx, tx, ignored, arp, echo, icmpErr, fromPeer uint64
	misdirected, fragNeeded, localOut, svc, dests uint64
	svcIn, svcOut                                 uint64
}

func snapStats(w *worker) statSnap {
	var s statSnap
	for i := range s.drops {
		s.drops[i] = w.stats.drops[i].load()
	}
	st := &w.stats
	s.rx, s.tx, s.ignored = st.rxFrames.load(), st.txFrames.load(), st.ignored.load()
	s.arp, s.echo, s.icmpErr = st.arpReplies.load(), st.echoReplies.load(), st.icmpErrors.load()
	s.fromPeer, s.misdirected, s.fragNeeded, s.localOut = st.fromPeer.load(), st.misdirected.load(), st.fragNeeded.load(), st.localOut.load()
	for i := range w.svcC {
		s.svc += w.svcC[i].conns.load()
		s.svcIn += w.svcC[i].inPkts.load()
		s.svcOut += w.svcC[i].outPkts.load()
	}
	for i := range w.destC {
		s.dests += w.destC[i].conns.load() + w.destC[i].inPkts.load() + w.destC[i].outPkts.load()
	}
	return s
}

// TestWorkerDropsByReason: each malformed or refused frame through
// w.handle moves exactly its own counter by one (a drop reason, or
// "ignored" for frames that are not ours to judge), queues nothing, and
// leaves every other counter, the connection table included, as it was.
func TestWorkerDropsByReason(t *testing.T) {
	vipA, ripPort := vip.Addr(), uint16(8080)
	elsewhere := netip.MustParseAddr("198.51.100.7") // not owned by uvs
	otherMAC := [6]byte{2, 0, 0, 0, 0, 0x99}
	syn := func(t *testing.T) []byte { return tcpFrame(t, cip, vip, d0MAC, true, false, 0) }
	const ignored = dropReason(numDropReasons) // the want for "ignored, not a drop"

	cases := []struct {
		name string
		// conn sets up a tracked connection first (its SYN forwarded);
		// rs is then the real server it was scheduled to.
		conn      bool
		server    bool // received on the server-side port
		truncated bool // the ring slot was shorter than the frame
		vlan      bool // the ring reported a VLAN tag
		frame     func(t *testing.T, rs netip.Addr) []byte
		want      dropReason
	}{
		{name: "shorter than Ethernet", want: dropTruncated,
			frame: func(t *testing.T, _ netip.Addr) []byte { return syn(t)[:vnetHdrLen+header.EthernetMinimumSize-1] }},
		{name: "vnet header only", want: dropTruncated,
			frame: func(t *testing.T, _ netip.Addr) []byte { return make([]byte, vnetHdrLen) }},
		{name: "ring slot truncated", truncated: true, want: dropTruncated,
			frame: func(t *testing.T, _ netip.Addr) []byte { return syn(t) }},
		// The Ethernet header is whole, so the IPv4 check is what fails:
		// bad_ipv4, not truncated.
		{name: "IPv4 header cut short", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte { return syn(t)[:ipOff+12] }},
		{name: "Ethernet header and no IPv4 at all", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte { return syn(t)[:ipOff] }},
		{name: "IHL 4", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b)[0] = 0x44
				return fixIPSum(b)
			}},
		{name: "bad IPv4 header checksum", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b)[10] ^= 0x5a
				return b
			}},
		{name: "IHL 0", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b)[0] = 0x40
				return b
			}},
		{name: "IHL beyond total length", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b)[0] = 0x4f // 60 > 40
				return b
			}},
		{name: "version 6 in an IPv4 frame", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b)[0] = 0x65
				return fixIPSum(b)
			}},
		{name: "total length beyond the frame", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				// gopacket pads to Ethernet's 60 bytes; a length
				// into the padding is still within the frame.
				b := syn(t)
				ipOf(b).SetTotalLength(uint16(len(b) - ipOff + 1))
				return fixIPSum(b)
			}},
		{name: "total length under the header", want: dropBadIPv4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				ipOf(b).SetTotalLength(19)
				return fixIPSum(b)
			}},
		{name: "IP options on a SYN to the VIP", want: dropIPOptions,
			frame: func(t *testing.T, _ netip.Addr) []byte { return withOptions(syn(t), []byte{1, 1, 1, 0}) }},
		{name: "router alert on a SYN to the VIP", want: dropIPOptions,
			frame: func(t *testing.T, _ netip.Addr) []byte { return withOptions(syn(t), []byte{148, 4, 0, 0}) }},
		{name: "first fragment (MF) to the VIP", want: dropFragment,
			frame: func(t *testing.T, _ netip.Addr) []byte { return withFragment(syn(t), 0x2000) }},
		{name: "last fragment (offset) to the VIP", want: dropFragment,
			frame: func(t *testing.T, _ netip.Addr) []byte { return withFragment(syn(t), 0x0010) }},
		{name: "middle fragment (MF, offset) to the VIP", want: dropFragment,
			frame: func(t *testing.T, _ netip.Addr) []byte { return withFragment(syn(t), 0x2000|0x00b9) }},
		{name: "fragment of a UDP datagram to the VIP", want: dropFragment,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return withFragment(udpFrame(t, cip, netip.AddrPortFrom(vipA, 53), d0MAC, 100), 0x2000)
			}},
		{name: "fragment to an address uvs does not own", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return withFragment(tcpFrame(t, cip, netip.AddrPortFrom(elsewhere, 80), d0MAC, true, false, 0), 0x2000)
			}},
		{name: "DF alone is no fragment", want: dropNoConn,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return withFragment(tcpFrame(t, cip, vip, d0MAC, false, true, 0), 0x4000)
			}},
		{name: "TCP header cut short to the VIP", want: dropBadL4,
			frame: func(t *testing.T, _ netip.Addr) []byte { return cutL4(syn(t), 12) }},
		{name: "TCP data offset beyond the segment", want: dropBadL4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				b[ipOff+header.IPv4MinimumSize+12] = 0x60 // 24 > 20
				return b
			}},
		{name: "TCP data offset under 5", want: dropBadL4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				b[ipOff+header.IPv4MinimumSize+12] = 0x40
				return b
			}},
		{name: "UDP header cut short to the VIP", want: dropBadL4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return cutL4(udpFrame(t, cip, netip.AddrPortFrom(vipA, 53), d0MAC, 0), 6)
			}},
		// Validation comes before ownership: a broken TCP header to an
		// address uvs does not own is a drop too, unlike a fragment.
		{name: "TCP header cut short elsewhere", want: dropBadL4,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return cutL4(tcpFrame(t, cip, netip.AddrPortFrom(elsewhere, 80), d0MAC, true, false, 0), 12)
			}},
		{name: "ACK to the VIP without a connection", want: dropNoConn,
			frame: func(t *testing.T, _ netip.Addr) []byte { return tcpFrame(t, cip, vip, d0MAC, false, true, 10) }},
		{name: "SYN-ACK to the VIP without a connection", want: dropNoConn,
			frame: func(t *testing.T, _ netip.Addr) []byte { return tcpFrame(t, cip, vip, d0MAC, true, true, 0) }},
		{name: "RST to the VIP without a connection", want: dropNoConn,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := tcpFrame(t, cip, vip, d0MAC, false, false, 0)
				b[ipOff+header.IPv4MinimumSize+13] = header.TCPFlagRst // checksum not checked before this
				return b
			}},
		{name: "TCP to the VIP on a port with no service", want: dropNoService,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return tcpFrame(t, cip, netip.AddrPortFrom(vipA, 81), d0MAC, true, false, 0)
			}},
		{name: "UDP to the VIP on a port with no service", want: dropNoService,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return udpFrame(t, cip, netip.AddrPortFrom(vipA, 80), d0MAC, 20)
			}},
		{name: "TCP to an address uvs does not own", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return tcpFrame(t, cip, netip.AddrPortFrom(elsewhere, 80), d0MAC, true, false, 0)
			}},
		{name: "GRE to the VIP", want: dropUnknownProto,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return ipv4Frame(t, cip.Addr(), vipA, d0MAC, layers.IPProtocolGRE, make([]byte, 24))
			}},
		{name: "SCTP to the VIP", want: dropUnknownProto,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return ipv4Frame(t, cip.Addr(), vipA, d0MAC, layers.IPProtocolSCTP, make([]byte, 12))
			}},
		{name: "GRE elsewhere", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return ipv4Frame(t, cip.Addr(), elsewhere, d0MAC, layers.IPProtocolGRE, make([]byte, 24))
			}},
		{name: "ICMP cut short to the VIP", want: dropTruncated,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return ipv4Frame(t, cip.Addr(), vipA, d0MAC, layers.IPProtocolICMPv4, []byte{8, 0, 0, 0})
			}},
		{name: "ICMP error to the VIP quoting no connection", want: dropICMPNoConn,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				quote := tcpFrame(t, vip, cip, clientMAC, true, true, 0)[ipOff : ipOff+header.IPv4MinimumSize+8]
				return icmpFrame(t, netip.MustParseAddr("198.18.0.254"), vipA, d0MAC, 3, 4, append([]byte{0, 0, 5, 0xdc}, quote...))
			}},
		{name: "echo reply to the VIP", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return icmpFrame(t, cip.Addr(), vipA, d0MAC, 0, 0, []byte{0, 1, 0, 1})
			}},
		{name: "reply with TTL 1 from the real server", conn: true, server: true, want: dropTTL,
			frame: func(t *testing.T, rs netip.Addr) []byte {
				b := tcpFrame(t, netip.AddrPortFrom(rs, ripPort), cip, d1MAC, true, true, 0)
				ipOf(b).SetTTL(1)
				return fixIPSum(b)
			}},
		{name: "reply with TTL 0 from the real server", conn: true, server: true, want: dropTTL,
			frame: func(t *testing.T, rs netip.Addr) []byte {
				b := tcpFrame(t, netip.AddrPortFrom(rs, ripPort), cip, d1MAC, false, true, 10)
				ipOf(b).SetTTL(0)
				return fixIPSum(b)
			}},
		{name: "VLAN-tagged frame", vlan: true, want: dropVLAN,
			frame: func(t *testing.T, _ netip.Addr) []byte { return syn(t) }},
		{name: "VLAN-tagged ARP request", vlan: true, want: dropVLAN,
			frame: func(t *testing.T, _ netip.Addr) []byte { return arpRequest(vipA) }},
		// The MAC is looked at before the tag.
		{name: "VLAN-tagged frame for another MAC", vlan: true, want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte { return tcpFrame(t, cip, vip, otherMAC, true, false, 0) }},
		{name: "frame for another MAC", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte { return tcpFrame(t, cip, vip, otherMAC, true, false, 0) }},
		{name: "multicast frame", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return tcpFrame(t, cip, vip, [6]byte{0x01, 0x00, 0x5e, 0, 0, 18}, true, false, 0)
			}},
		{name: "IPv6 ethertype", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				b := syn(t)
				b[vnetHdrLen+12], b[vnetHdrLen+13] = 0x86, 0xdd
				return b
			}},
		{name: "ARP request for an address uvs does not own", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte { return arpRequest(elsewhere) }},
		{name: "ARP request cut short", want: ignored,
			frame: func(t *testing.T, _ netip.Addr) []byte {
				return arpRequest(vipA)[:vnetHdrLen+header.EthernetMinimumSize+20]
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, pc, ps := testWorker(t, "rr")
			var rs netip.Addr
			if tc.conn {
				w.handle(pc, rxFrame{buf: syn(t)})
				out := queued(ps)
				if len(out) != 1 {
					t.Fatalf("setup: %d SYNs forwarded", len(out))
				}
				_, ip, _ := decode(t, out[0])
				rs, _ = netip.AddrFromSlice(ip.DstIP)
			}
			conns := w.ct.Len()
			before := snapStats(w)
			in := pc
			if tc.server {
				in = ps
			}
			w.handle(in, rxFrame{buf: tc.frame(t, rs), truncated: tc.truncated, vlan: tc.vlan})
			after := snapStats(w)
			want := before
			if tc.want == ignored {
				want.ignored++
			} else {
				want.drops[tc.want]++
			}
			if after != want {
				for r := range numDropReasons {
					if d := after.drops[r] - before.drops[r]; d != 0 {
						t.Errorf("%v moved by %d", r, d)
					}
				}
				if d := after.ignored - before.ignored; d != 0 {
					t.Errorf("ignored moved by %d", d)
				}
				after.drops, before.drops, after.ignored, before.ignored = [numDropReasons]uint64{}, [numDropReasons]uint64{}, 0, 0
				if after != before {
					t.Errorf("other counters moved: %+v -> %+v", before, after)
				}
				t.Fatalf("want %v and nothing else", map[bool]string{true: "ignored", false: tc.want.String()}[tc.want == ignored])
			}
			if n := len(queued(pc)) + len(queued(ps)); n != 0 {
				t.Errorf("%d frames queued", n)
			}
			if w.ct.Len() != conns {
				t.Errorf("%d connections after, %d before", w.ct.Len(), conns)
			}
		})
	}
}
