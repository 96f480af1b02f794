package dataplane

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// markEngine is an engine of one socketless worker with a mark ring: a
// fwmark service (mark 1, rr, servers without a port), an address
// service on vip:8080 and, when persistent, persistence on the mark.
func markEngine(t testing.TB, persistent bool) (*Engine, *worker, *port, *port) {
	t.Helper()
	m := service.NewModel()
	fk := service.Key{FWMark: 1}
	cfg := service.ServiceConfig{Key: fk, Sched: "rr"}
	if persistent {
		cfg.Persistent, cfg.Timeout, cfg.Netmask = true, 300, 32
	}
	ak := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: 8080}
	for _, c := range []service.ServiceConfig{cfg, {Key: ak, Sched: "rr"}} {
		if err := m.AddService(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []netip.Addr{rip1, rip2} {
		if err := m.AddDest(fk, service.DestConfig{Addr: r.As4(), Weight: 1}); err != nil {
			t.Fatal(err)
		}
		if err := m.AddDest(ak, service.DestConfig{Addr: r.As4(), Port: 8080, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		m.SetNextHop(r.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
	}
	m.SetOwned([][4]byte{vip.Addr().As4()})
	w, pc, ps := testWorkerWith(m, 1<<12)
	r, err := newMarkRing(8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	w.marks = r
	e := &Engine{model: m, ifaces: []Iface{{Index: 1, MAC: d0MAC}, {Index: 2, MAC: d1MAC}},
		workers: []*worker{w}, markWoken: make([]bool, 1)}
	return e, w, pc, ps
}

// marked hands frame's IP packet to the engine as netfilter marked it and
// runs the worker's mark ring.
func marked(t *testing.T, e *Engine, w *worker, frame []byte, mark uint32) {
	t.Helper()
	pkt := frame[vnetHdrLen+header.EthernetMinimumSize:]
	if !e.InjectMarked(1, clientMAC, mark, pkt) {
		t.Fatalf("InjectMarked refused: %+v", e.MarkCounters())
	}
	w.drainMarks()
	w.marks.release()
}

type markCounts struct{ in, dup, deferred uint64 }

func markCountsOf(w *worker) markCounts {
	return markCounts{w.stats.markIn.load(), w.stats.markDup.load(), w.stats.markDeferred.load()}
}

// TestWorkerFWMark: a fwmark service's connection is opened by the marked
// copy of its SYN and continued from the ring; every packet goes out
// exactly once, whichever copy arrives first.
func TestWorkerFWMark(t *testing.T) {
	e, w, pc, ps := markEngine(t, false)
	syn := tcpFrame(t, cip, vip, d0MAC, true, false, 0)

	w.handle(pc, rxFrame{buf: syn})
	if got := markCountsOf(w); got != (markCounts{deferred: 1}) || len(queued(ps)) != 0 {
		t.Fatalf("ring copy of the SYN: counts %+v, want it left to the queue and nothing sent", got)
	}
	marked(t, e, w, syn, 1)
	out := queued(ps)
	if len(out) != 1 {
		t.Fatalf("marked SYN: %d frames to the servers, want 1", len(out))
	}
	_, ip, tcp := decode(t, out[0])
	if tcp.DstPort != 80 || !tcp.SYN {
		t.Fatalf("marked SYN went to port %d (SYN %v): a server without a port takes the packet's", tcp.DstPort, tcp.SYN)
	}
	server := ip.DstIP.String()
	conns := tableSnapshot(w)
	if len(conns) != 1 || conns[0].Flags&conntrack.FlagFwmark == 0 {
		t.Fatalf("table %+v: want one fwmark connection", conns)
	}

	// A retransmitted SYN: its ring copy waits for its marked copy,
	// which goes out.
	w.handle(pc, rxFrame{buf: syn})
	marked(t, e, w, syn, 1)
	if n := len(queued(ps)); n != 1 {
		t.Fatalf("retransmitted SYN sent %d times, want once", n)
	}
	// The rest of the connection comes from the ring; a marked copy of
	// it (if some rule queued one) is not sent again.
	// (The ring rewrites its frame in place: each copy is built anew.)
	ack := func() []byte { return tcpFrame(t, cip, vip, d0MAC, false, true, 10) }
	w.handle(pc, rxFrame{buf: ack()})
	marked(t, e, w, ack(), 1)
	if out := queued(ps); len(out) != 1 {
		t.Fatalf("ACK sent %d times, want once", len(out))
	} else if _, ip, _ := decode(t, out[0]); ip.DstIP.String() != server {
		t.Fatalf("ACK went to %v, its connection's server is %s", ip.DstIP, server)
	}
	// The server's reply goes back through the ring as any NAT reply.
	rs := netip.AddrPortFrom(netip.MustParseAddr(server), 80)
	w.handle(ps, rxFrame{buf: tcpFrame(t, rs, cip, d1MAC, true, true, 0)})
	if out := queued(pc); len(out) != 1 {
		t.Fatalf("reply: %d frames to the client, want 1", len(out))
	} else if _, ip, tcp := decode(t, out[0]); ip.SrcIP.String() != vip.Addr().String() || tcp.SrcPort != 80 {
		t.Fatalf("reply from %v:%d, want the VIP's endpoint", ip.SrcIP, tcp.SrcPort)
	}
	want := markCounts{in: 3, dup: 1, deferred: 2} // the ACK's marked copy is the dup
	if got := markCountsOf(w); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}

	// The address service keeps its own packets: the ring schedules
	// them, and their marked copies are not sent again.
	syn8080 := func() []byte { return tcpFrame(t, cip, netip.AddrPortFrom(vip.Addr(), 8080), d0MAC, true, false, 0) }
	w.handle(pc, rxFrame{buf: syn8080()})
	marked(t, e, w, syn8080(), 1)
	if n := len(queued(ps)); n != 1 {
		t.Fatalf("SYN to the address service sent %d times, want once", n)
	}
	// A mark of no service: the ring copy was the one.
	other := tcpFrame(t, netip.MustParseAddrPort("198.18.0.2:40001"), vip, d0MAC, true, false, 0)
	marked(t, e, w, other, 9)
	if n := len(queued(ps)); n != 0 {
		t.Fatalf("a mark of no service sent %d frames", n)
	}
	if e.InjectMarked(7, clientMAC, 1, other[vnetHdrLen+header.EthernetMinimumSize:]) || e.MarkCounters().BadIface != 1 {
		t.Fatalf("a packet from an interface uvs does not capture on was taken: %+v", e.MarkCounters())
	}
}

// TestWorkerFWMarkUDP: every datagram of a fwmark UDP connection is the
// queue's; its ring copies are never sent.
func TestWorkerFWMarkUDP(t *testing.T) {
	e, w, pc, ps := markEngine(t, false)
	dst := netip.AddrPortFrom(vip.Addr(), 53)
	for i := range 3 {
		w.handle(pc, rxFrame{buf: udpFrame(t, cip, dst, d0MAC, 20)})
		marked(t, e, w, udpFrame(t, cip, dst, d0MAC, 20), 1)
		out := queued(ps)
		if len(out) != 1 {
			t.Fatalf("datagram %d sent %d times, want once", i, len(out))
		}
	}
	if got := markCountsOf(w); got != (markCounts{in: 3, deferred: 3}) {
		t.Fatalf("counts %+v", got)
	}
}

// TestWorkerFWMarkPersistence: a persistent fwmark service keeps a
// client on one server across ports (IPVS's template is keyed by the
// mark, port 0: the classic HTTP and HTTPS pair).
func TestWorkerFWMarkPersistence(t *testing.T) {
	e, w, _, ps := markEngine(t, true)
	var first string
	for i, port := range []uint16{80, 443, 80, 8443} {
		src := netip.AddrPortFrom(cip.Addr(), uint16(41000+i))
		marked(t, e, w, tcpFrame(t, src, netip.AddrPortFrom(vip.Addr(), port), d0MAC, true, false, 0), 1)
		out := queued(ps)
		if len(out) != 1 {
			t.Fatalf("SYN to port %d: %d frames", port, len(out))
		}
		_, ip, tcp := decode(t, out[0])
		if tcp.DstPort != layers.TCPPort(port) {
			t.Fatalf("SYN to port %d went to port %d", port, tcp.DstPort)
		}
		if i == 0 {
			first = ip.DstIP.String()
		} else if ip.DstIP.String() != first {
			t.Fatalf("connection %d (port %d) went to %v, the template names %s", i, port, ip.DstIP, first)
		}
	}
	var tpl *conntrack.Conn
	for _, c := range tableSnapshot(w) {
		if c.IsTemplate() {
			tpl = &c
		}
	}
	if tpl == nil || tpl.Orig.Dst != [4]byte{0, 0, 0, 1} || tpl.Orig.DPort != 0 {
		t.Fatalf("template %+v: want one keyed by mark 1 as an address, port 0", tpl)
	}
}

// BenchmarkMarked is a marked UDP datagram of a tracked fwmark
// connection: InjectMarked's copy into the owner's ring, then the
// worker's pass over it (lookup, rewrite, queue).
func BenchmarkMarked(b *testing.B) {
	e, w, _, ps := markEngine(b, false)
	frame := udpFrame(b, cip, netip.AddrPortFrom(vip.Addr(), 53), d0MAC, 18)
	pkt := frame[vnetHdrLen+header.EthernetMinimumSize:]
	b.ReportAllocs()
	for b.Loop() {
		if !e.InjectMarked(1, clientMAC, 1, pkt) {
			b.Fatal("refused")
		}
		w.drainMarks()
		w.marks.release()
		ps.txN = 0
	}
	if w.stats.markIn.load() == 0 || len(tableSnapshot(w)) != 1 {
		b.Fatal("the datagrams did not go through one connection")
	}
}
