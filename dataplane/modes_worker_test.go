package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/modes"
	"github.com/uvs-project/uvs/service"
)

// Golden packets for the forwarding modes other than NAT, through the
// in-memory worker: one real server (rip1), so the schedule is known.

var (
	lip = netip.MustParseAddr("198.19.0.200") // FULLNAT local address
	dip = netip.MustParseAddr("198.19.0.1")   // the director's address towards the servers (TUN outer source)
)

// modeWorker is testWorker with a single real server forwarded by fwd:
// DR and TUN keep the service port (the model refuses a mapping), NAT
// and FULLNAT map it to 8080.
func modeWorker(tb testing.TB, fwd service.Fwd) (w *worker, pc, ps *port, rport uint16) {
	tb.Helper()
	m := service.NewModel()
	key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
	if err := m.AddService(service.ServiceConfig{Key: key, Sched: "rr"}); err != nil {
		tb.Fatal(err)
	}
	rport = 8080
	if fwd == service.FwdRoute || fwd == service.FwdTunnel {
		rport = vip.Port()
	}
	if err := m.AddDest(key, service.DestConfig{Addr: rip1.As4(), Port: rport, Fwd: fwd, Weight: 1}); err != nil {
		tb.Fatal(err)
	}
	if fwd == service.FwdFullNat {
		if err := m.SetLocalAddrs(key, [][4]byte{lip.As4()}); err != nil {
			tb.Fatal(err)
		}
	}
	m.SetNextHop(rip1.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Src: dip.As4(), Valid: true})
	w, pc, ps = testWorkerWith(m, 1<<16)
	// fakePort leaves the MTU 0, which TUN mode reads as "everything is
	// too big".
	pc.mtu, ps.mtu = 1500, 1500
	return w, pc, ps, rport
}

// ipSumOK reports whether the IPv4 header at ip has a valid checksum.
func ipSumOK(ip []byte) bool {
	hl := int(ip[0]&0x0f) * 4
	return len(ip) >= hl && header.Checksum(ip[:hl], 0) == 0xffff
}

func macs(tb testing.TB, out []byte, src, dst [6]byte) {
	tb.Helper()
	e := header.Ethernet(out[vnetHdrLen:])
	if e.Src() != src || e.Dst() != dst {
		tb.Errorf("MACs %x -> %x, want %x -> %x", e.Src(), e.Dst(), src, dst)
	}
	if !bytes.Equal(out[:vnetHdrLen], make([]byte, vnetHdrLen)) {
		tb.Errorf("vnet header % x, want zeros", out[:vnetHdrLen])
	}
}

func endpoints(ip *layers.IPv4, tcp *layers.TCP) (src, dst netip.AddrPort) {
	s, _ := netip.AddrFromSlice(ip.SrcIP)
	d, _ := netip.AddrFromSlice(ip.DstIP)
	return netip.AddrPortFrom(s, uint16(tcp.SrcPort)), netip.AddrPortFrom(d, uint16(tcp.DstPort))
}

// one returns the only frame queued on p, and that nothing went to the
// other ports.
func one(tb testing.TB, w *worker, p *port) []byte {
	tb.Helper()
	var out [][]byte
	for _, q := range w.ports {
		f := queued(q)
		if q == p {
			out = f
		} else if len(f) != 0 {
			tb.Fatalf("%d frames queued on port %d", len(f), q.ifindex)
		}
	}
	if len(out) != 1 {
		tb.Fatalf("%d frames queued on port %d, want 1 (drops %v)", len(out), p.ifindex, dropsOf(w))
	}
	return out[0]
}

func dropsOf(w *worker) map[string]uint64 {
	m := map[string]uint64{}
	for r := range numDropReasons {
		if n := w.stats.drops[r].load(); n != 0 {
			m[r.String()] = n
		}
	}
	return m
}

// TestWorkerDRGolden: direct routing changes the MACs and nothing else:
// the SYN and a data packet leave on the server port from its MAC to the
// real server's, IP header and TCP bytes as they came (no TTL decrement,
// as IPVS's dr_xmit). The server answers the client directly, so the
// connection is input-only.
func TestWorkerDRGolden(t *testing.T) {
	w, pc, ps, _ := modeWorker(t, service.FwdRoute)
	for i, in := range [][]byte{
		tcpFrame(t, cip, vip, d0MAC, true, false, 0),
		tcpFrame(t, cip, vip, d0MAC, false, true, 300),
	} {
		want := bytes.Clone(in)
		w.handle(pc, rxFrame{buf: in})
		out := one(t, w, ps)
		macs(t, out, d1MAC, rsMAC)
		if !bytes.Equal(out[vnetHdrLen+12:], want[vnetHdrLen+12:]) {
			t.Fatalf("packet %d changed:\n got % x\nwant % x", i, out[vnetHdrLen+12:], want[vnetHdrLen+12:])
		}
		_, ip, _ := decode(t, out)
		if !ipSumOK(ip.Contents) {
			t.Errorf("packet %d: IPv4 header checksum invalid", i)
		}
	}
	c := w.ct.Get(0)
	if w.ct.Len() != 1 || service.Fwd(c.Fwd) != service.FwdRoute || c.Flags&conntrack.FlagNoOutput == 0 {
		t.Fatalf("connection fwd %v flags %#x, want DR and input-only", service.Fwd(c.Fwd), c.Flags)
	}
	if got := w.svcC[c.Svc].inPkts.load(); got != 2 {
		t.Errorf("service in-packets %d, want 2", got)
	}
}

// TestWorkerFullNATGolden: FULLNAT rewrites both ends. The client's SYN
// becomes LIP:lport -> RIP:rport (lport from 1024 up), the server's
// SYN-ACK to LIP:lport becomes VIP:vport -> CIP:cport towards the client's
// MAC with the TTL decremented, and the data of both ways follows.
func TestWorkerFullNATGolden(t *testing.T) {
	w, pc, ps, rport := modeWorker(t, service.FwdFullNat)
	rs := netip.AddrPortFrom(rip1, rport)

	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
	out := one(t, w, ps)
	macs(t, out, d1MAC, rsMAC)
	_, ip, tcp := decode(t, out)
	src, dst := endpoints(ip, tcp)
	if src.Addr() != lip || src.Port() < lportMin || dst != rs {
		t.Fatalf("SYN rewritten to %v -> %v, want %v:>=%d -> %v", src, dst, lip, lportMin, rs)
	}
	if !tcp.SYN || tcp.ACK || tcp.Seq != 1 || ip.TTL != 64 || !ipSumOK(ip.Contents) {
		t.Errorf("SYN flags/seq/TTL/checksum: syn %v ack %v seq %d ttl %d", tcp.SYN, tcp.ACK, tcp.Seq, ip.TTL)
	}
	local := src

	w.handle(ps, rxFrame{buf: tcpFrame(t, rs, local, d1MAC, true, true, 0)})
	back := one(t, w, pc)
	macs(t, back, d0MAC, clientMAC)
	_, ip, tcp = decode(t, back)
	if src, dst := endpoints(ip, tcp); src != vip || dst != cip {
		t.Fatalf("SYN-ACK rewritten to %v -> %v, want %v -> %v", src, dst, vip, cip)
	}
	if ip.TTL != 63 || !ipSumOK(ip.Contents) {
		t.Errorf("SYN-ACK TTL %d (want 63) or header checksum invalid", ip.TTL)
	}

	// Data both ways, with a payload under the checksum.
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 500)})
	_, ip, tcp = decode(t, one(t, w, ps))
	if src, dst := endpoints(ip, tcp); src != local || dst != rs || len(tcp.Payload) != 500 || !ipSumOK(ip.Contents) {
		t.Fatalf("data rewritten to %v -> %v (%d bytes)", src, dst, len(tcp.Payload))
	}
	w.handle(ps, rxFrame{buf: tcpFrame(t, rs, local, d1MAC, false, true, 700)})
	_, ip, tcp = decode(t, one(t, w, pc))
	if src, dst := endpoints(ip, tcp); src != vip || dst != cip || len(tcp.Payload) != 700 || !ipSumOK(ip.Contents) {
		t.Fatalf("reply data rewritten to %v -> %v (%d bytes)", src, dst, len(tcp.Payload))
	}

	c := w.ct.Get(0)
	if w.ct.Len() != 1 || service.Fwd(c.Fwd) != service.FwdFullNat || c.Flags&conntrack.FlagNoOutput != 0 {
		t.Fatalf("connection fwd %v flags %#x, want FULLNAT seeing both ways", service.Fwd(c.Fwd), c.Flags)
	}
	if c.State != conntrack.StateEstablished {
		t.Errorf("state %v, want ESTABLISHED", c.State)
	}
	// The client's packet to the local address directly is not a
	// connection of ours: LIP owns no service.
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, local, d0MAC, true, false, 0)})
	if got := w.stats.drops[dropNoService].load(); got != 1 {
		t.Errorf("no_service %d for a SYN to the local address, want 1", got)
	}
}

// tunCheck checks a TUN frame: Ethernet from the server port to the real
// server, an outer IPv4 header DIP -> RIP of protocol 4 with the inner
// TTL, TOS and DF, the given ID and a valid checksum, and the inner packet
// byte for byte as it came.
func tunCheck(tb testing.TB, out, inner []byte, id uint16) {
	tb.Helper()
	macs(tb, out, d1MAC, rsMAC)
	p := gopacket.NewPacket(out[vnetHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		tb.Fatalf("undecodable: %v", el.Error())
	}
	ls := p.Layers()
	if len(ls) < 4 {
		tb.Fatalf("layers %v", ls)
	}
	outer, ok1 := ls[1].(*layers.IPv4)
	in, ok2 := ls[2].(*layers.IPv4)
	tcp, ok3 := ls[3].(*layers.TCP)
	if !ok1 || !ok2 || !ok3 {
		tb.Fatalf("layers %v, want Ethernet/IPv4/IPv4/TCP", ls)
	}
	if outer.Protocol != layers.IPProtocolIPv4 || outer.IHL != 5 || outer.SrcIP.String() != dip.String() || outer.DstIP.String() != rip1.String() {
		tb.Errorf("outer %v -> %v protocol %d IHL %d", outer.SrcIP, outer.DstIP, outer.Protocol, outer.IHL)
	}
	if outer.TTL != inner[8] || outer.TOS != inner[1] || outer.Id != id || (outer.Flags&layers.IPv4DontFragment != 0) != (inner[6]&0x40 != 0) {
		tb.Errorf("outer TTL %d TOS %#x ID %d flags %v; inner TTL %d TOS %#x DF %v, want ID %d", outer.TTL, outer.TOS, outer.Id, outer.Flags, inner[8], inner[1], inner[6]&0x40 != 0, id)
	}
	if int(outer.Length) != len(inner)+modes.IPIPOverhead {
		tb.Errorf("outer length %d, inner %d", outer.Length, len(inner))
	}
	const outerAt = vnetHdrLen + header.EthernetMinimumSize
	if !ipSumOK(out[outerAt:]) {
		tb.Errorf("outer header checksum invalid")
	}
	if got := out[outerAt+modes.IPIPOverhead:]; !bytes.Equal(got, inner) {
		tb.Errorf("inner packet changed:\n got % x\nwant % x", got, inner)
	}
	_ = tcp.SetNetworkLayerForChecksum(in)
	if r, err := tcp.ComputeChecksum(); err != nil || r != 0 {
		tb.Errorf("inner TCP checksum invalid (residue %#x, %v)", r, err)
	}
}

// withHeadroom places buf Headroom bytes into a fresh buffer, as the ring
// gives a frame (PACKET_RESERVE): the rxFrame's head is that buffer.
func withHeadroom(buf []byte) rxFrame {
	head := make([]byte, Headroom+len(buf))
	copy(head[Headroom:], buf)
	return rxFrame{buf: head[Headroom:], head: head}
}

// TestWorkerTUNGolden: TUN mode wraps the client's packet in IPIP towards
// the real server. With the ring's headroom the outer header is put in
// front of the frame in place (the frame queued starts IPIPOverhead bytes
// before it, and the arena is not used); without (head nil) the frame is
// copied to the arena first. The outer ID counts up per packet.
func TestWorkerTUNGolden(t *testing.T) {
	for _, headroom := range []bool{true, false} {
		name := map[bool]string{true: "headroom", false: "arena"}[headroom]
		t.Run(name, func(t *testing.T) {
			w, pc, ps, _ := modeWorker(t, service.FwdTunnel)
			syn := tcpFrame(t, cip, vip, d0MAC, true, false, 0)
			df := tcpFrame(t, cip, vip, d0MAC, false, true, 1000)
			ipOf(df)[1] = 0xb8 // DSCP EF, copied to the outer header
			withFragment(df, 0x4000)
			for i, in := range [][]byte{syn, df} {
				// Without the Ethernet padding gopacket put after
				// a short packet: the encapsulation ends with the
				// inner packet.
				inner := bytes.Clone(in[ipOff : ipOff+int(ipOf(in).TotalLength())])
				f := rxFrame{buf: bytes.Clone(in)}
				if headroom {
					f = withHeadroom(in)
				}
				w.handle(pc, f)
				if ps.txN == 1 && headroom {
					if got, want := unsafe.Pointer(ps.txIov[0].Base), unsafe.Pointer(&f.head[Headroom-modes.IPIPOverhead]); got != want {
						t.Errorf("packet %d not encapsulated in place in its headroom", i)
					}
				}
				out := one(t, w, ps)
				tunCheck(t, out, inner, uint16(i))
			}
			if headroom && w.arena.n != 0 {
				t.Errorf("arena used (%d bytes) although the frames had headroom", w.arena.n)
			}
			if !headroom && w.arena.n == 0 {
				t.Errorf("arena unused for frames without headroom")
			}
			c := w.ct.Get(0)
			if w.ct.Len() != 1 || service.Fwd(c.Fwd) != service.FwdTunnel || c.Flags&conntrack.FlagNoOutput == 0 {
				t.Fatalf("connection fwd %v flags %#x, want TUN and input-only", service.Fwd(c.Fwd), c.Flags)
			}
			if got := w.svcC[c.Svc].inPkts.load(); got != 2 {
				t.Errorf("service in-packets %d, want 2", got)
			}
		})
	}
}

// TestWorkerTUNTooBig: a DF packet that does not fit the tunnel's MTU
// with the outer header is answered with an ICMP fragmentation-needed
// from the VIP to the client, naming MTU - 20, and counted too_big.
func TestWorkerTUNTooBig(t *testing.T) {
	w, pc, ps, _ := modeWorker(t, service.FwdTunnel)
	w.handle(pc, withHeadroom(tcpFrame(t, cip, vip, d0MAC, true, false, 0)))
	one(t, w, ps)
	big := withFragment(tcpFrame(t, cip, vip, d0MAC, false, true, 1500-40-10), 0x4000)
	w.handle(pc, withHeadroom(big))
	back := one(t, w, pc)
	macs(t, back, d0MAC, clientMAC)
	if got := w.stats.drops[dropTooBig].load(); got != 1 || w.stats.fragNeeded.load() != 1 {
		t.Fatalf("too_big %d frag_needed %d, want 1 and 1", got, w.stats.fragNeeded.load())
	}
	p := gopacket.NewPacket(back[vnetHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ic, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || ic == nil {
		t.Fatalf("not ICMP: %v", p)
	}
	if ip.SrcIP.String() != vip.Addr().String() || ip.DstIP.String() != cip.Addr().String() || !ipSumOK(ip.Contents) {
		t.Errorf("ICMP %v -> %v", ip.SrcIP, ip.DstIP)
	}
	if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || ic.Seq != 1500-modes.IPIPOverhead {
		t.Errorf("ICMP %v next-hop MTU %d, want 3/4 and %d", ic.TypeCode, ic.Seq, 1500-modes.IPIPOverhead)
	}
	if header.Checksum(ip.Payload, 0) != 0xffff {
		t.Errorf("ICMP checksum invalid")
	}
}

// TestWorkerModesZeroAllocs: an established DR, FULLNAT (both ways) and
// TUN (with headroom) packet costs no allocation, as NAT's does
// (TestPipelineZeroAllocs).
func TestWorkerModesZeroAllocs(t *testing.T) {
	run := func(t *testing.T, w *worker, in, out *port, pkt []byte, headroom bool) {
		t.Helper()
		work := make([]byte, len(pkt))
		head := make([]byte, Headroom+len(pkt))
		f := rxFrame{buf: work}
		if headroom {
			f = rxFrame{buf: head[Headroom:], head: head}
		}
		// Once outside the measurement, to see that it forwards.
		copy(f.buf, pkt)
		w.handle(in, f)
		if out.txN != 1 {
			t.Fatalf("not forwarded (drops %v)", dropsOf(w))
		}
		out.txN = 0
		allocs := testing.AllocsPerRun(1000, func() {
			copy(f.buf, pkt)
			w.handle(in, f)
			out.txN = 0
		})
		if allocs != 0 {
			t.Fatalf("%v allocations per established packet", allocs)
		}
	}
	t.Run("DR", func(t *testing.T) {
		w, pc, ps, _ := modeWorker(t, service.FwdRoute)
		w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
		ps.txN = 0
		run(t, w, pc, ps, tcpFrame(t, cip, vip, d0MAC, false, true, 64), false)
	})
	t.Run("FULLNAT", func(t *testing.T) {
		w, pc, ps, rport := modeWorker(t, service.FwdFullNat)
		w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
		_, ip, tcp := decode(t, one(t, w, ps))
		local, _ := endpoints(ip, tcp)
		rs := netip.AddrPortFrom(rip1, rport)
		w.handle(ps, rxFrame{buf: tcpFrame(t, rs, local, d1MAC, true, true, 0)})
		one(t, w, pc)
		run(t, w, pc, ps, tcpFrame(t, cip, vip, d0MAC, false, true, 64), false)
		run(t, w, ps, pc, tcpFrame(t, rs, local, d1MAC, false, true, 64), false)
	})
	t.Run("TUN", func(t *testing.T) {
		w, pc, ps, _ := modeWorker(t, service.FwdTunnel)
		w.handle(pc, withHeadroom(tcpFrame(t, cip, vip, d0MAC, true, false, 0)))
		ps.txN = 0
		run(t, w, pc, ps, tcpFrame(t, cip, vip, d0MAC, false, true, 64), true)
	})
}
