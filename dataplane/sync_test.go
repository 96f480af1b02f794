package dataplane

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// TestWorkerStandby: while the VIP's VRRP instance is not MASTER the
// worker forwards nothing of its service, new or established, and
// answers no ARP for it; back to MASTER, the established connection
// forwards again.
func TestWorkerStandby(t *testing.T) {
	w, pc, ps := testWorker(t, "rr")
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
	if n := len(queued(ps)); n != 1 {
		t.Fatalf("%d frames forwarded as MASTER, want 1", n)
	}
	w.model.SetStandby([][4]byte{vip.Addr().As4()}, true)
	w.adopt(w.model.Snapshot())
	if w.snap.Owned[vip.Addr().As4()] {
		t.Fatal("a standby VIP is still owned")
	}
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 10)})
	other := netip.AddrPortFrom(cip.Addr(), cip.Port()+1)
	w.handle(pc, rxFrame{buf: tcpFrame(t, other, vip, d0MAC, true, false, 0)})
	if n := len(queued(ps)); n != 0 {
		t.Fatalf("%d frames forwarded in standby", n)
	}
	if got := w.stats.drops[dropStandby].load(); got != 2 {
		t.Fatalf("standby drops %d, want 2", got)
	}
	w.model.SetStandby([][4]byte{vip.Addr().As4()}, false)
	w.adopt(w.model.Snapshot())
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 10)})
	if n := len(queued(ps)); n != 1 {
		t.Fatalf("%d frames forwarded as MASTER again, want 1", n)
	}
}

// TestWorkerFromPeer: a new connection's packet from a peer director's
// MAC was scheduled by that director: left to the host, never scheduled.
func TestWorkerFromPeer(t *testing.T) {
	w, pc, ps := testWorker(t, "rr")
	w.model.SetPeerMACs([][6]byte{clientMAC})
	w.adopt(w.model.Snapshot())
	w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
	if n := len(queued(ps)); n != 0 || w.ct.Len() != 0 {
		t.Fatalf("a peer's packet was scheduled: %d frames, %d connections", n, w.ct.Len())
	}
	if w.stats.fromPeer.load() != 1 {
		t.Fatalf("from_peer %d, want 1", w.stats.fromPeer.load())
	}
}

// TestWorkerSyncRoundTrip: the master's worker queues a record when the
// connection becomes ESTABLISHED; a backup's worker imports it and then
// forwards the connection's packets to the same real server.
func TestWorkerSyncRoundTrip(t *testing.T) {
	m, pc, ps := testWorker(t, "rr")
	var on atomic.Bool
	on.Store(true)
	m.sync, m.syncing, m.syncQ = &on, true, connsync.NewQueue(64)
	m.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
	fwd := queued(ps)
	if len(fwd) != 1 {
		t.Fatalf("%d SYNs forwarded", len(fwd))
	}
	_, sip, _ := decode(t, fwd[0])
	rs, _ := netip.AddrFromSlice(sip.DstIP)
	if m.syncQ.Len() != 0 {
		t.Fatal("a SYN_RECV connection was queued for sync")
	}
	// The server's SYN-ACK, then the client's ACK: ESTABLISHED.
	synack := tcpFrame(t, netip.AddrPortFrom(rs, 8080), cip, d1MAC, true, true, 0)
	m.handle(ps, rxFrame{buf: synack})
	m.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 0)})
	var recs [4]connsync.Record
	n := m.syncQ.Pop(recs[:])
	if n != 1 {
		t.Fatalf("%d records queued, want 1", n)
	}
	r := recs[0]
	if conntrack.State(r.State) != conntrack.StateEstablished || r.CAddr != cip.Addr().As4() || r.DAddr != rs.As4() || r.DPort != 8080 || r.Timeout == 0 {
		t.Fatalf("record %+v", r)
	}

	b, bc, bs := testWorker(t, "rr")
	b.importQ = make(chan importRec, 4)
	b.importQ <- importRec{rec: r, clientIf: 1}
	b.importSynced()
	if b.ct.Len() != 1 || b.stats.syncIn.load() != 1 {
		t.Fatalf("imported %d connections", b.ct.Len())
	}
	if got := b.snap.Dests[b.ct.Get(0).Dest].Conns.Active.Load(); got != 1 {
		t.Fatalf("active connections %d after import, want 1", got)
	}
	// A mid-stream ACK goes to the master's choice, and the server's
	// reply back to the client.
	b.handle(bc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 100)})
	out := queued(bs)
	if len(out) != 1 {
		t.Fatalf("%d frames forwarded for the synced connection", len(out))
	}
	_, ip, tcp := decode(t, out[0])
	if ip.DstIP.String() != rs.String() || tcp.DstPort != 8080 {
		t.Fatalf("forwarded to %v:%d, want %v:8080", ip.DstIP, tcp.DstPort, rs)
	}
	reply := tcpFrame(t, netip.AddrPortFrom(rs, 8080), cip, d1MAC, false, true, 100)
	b.handle(bs, rxFrame{buf: reply})
	back := queued(bc)
	if len(back) != 1 {
		t.Fatalf("%d replies forwarded", len(back))
	}
	eth, ip, _ := decode(t, back[0])
	if ip.SrcIP.String() != vip.Addr().String() || [6]byte(eth.DstMAC) != clientMAC {
		t.Fatalf("reply from %v to MAC %v", ip.SrcIP, eth.DstMAC)
	}
}

type fakeHost struct{ pkts [][]byte }

func (h *fakeHost) Write(p []byte) error {
	h.pkts = append(h.pkts, append([]byte(nil), p...))
	return nil
}

// TestWorkerLocalDelivery: a real server that is this host gets its
// connections through the host stack, the partial checksum of a frame
// from a local sender completed (a TUN device takes no offload
// metadata); nothing goes out on the wire.
func TestWorkerLocalDelivery(t *testing.T) {
	w, pc, ps := testWorker(t, "rr")
	h := &fakeHost{}
	w.host = h
	for _, r := range []netip.Addr{rip1, rip2} {
		w.model.SetNextHop(r.As4(), service.NextHop{Local: true, Valid: true})
	}
	w.adopt(w.model.Snapshot())
	syn := tcpFrame(t, cip, vip, d0MAC, true, false, 0)
	// Make it partial, as veth hands it over: the checksum field holds
	// only the pseudo-header sum.
	const l4 = header.EthernetMinimumSize + header.IPv4MinimumSize
	frame := syn[vnetHdrLen:]
	tcpLen := int(header.IPv4(frame[header.EthernetMinimumSize:]).TotalLength()) - header.IPv4MinimumSize
	ps0 := header.PseudoHeaderChecksum(header.ProtoTCP, cip.Addr().As4(), vip.Addr().As4(), uint16(tcpLen))
	header.TCP(frame[l4:]).SetChecksum(ps0)
	vnet := header.VirtioNetHdr(syn[:vnetHdrLen])
	vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
	vnet.SetCsumStart(l4)
	vnet.SetCsumOffset(header.TCPChecksumOffset)
	w.handle(pc, rxFrame{buf: syn})
	if n := len(queued(ps)) + len(queued(pc)); n != 0 {
		t.Fatalf("%d frames sent on the wire", n)
	}
	if len(h.pkts) != 1 || w.stats.localOut.load() != 1 {
		t.Fatalf("%d packets to the host", len(h.pkts))
	}
	p := gopacket.NewPacket(h.pkts[0], layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("not IPv4/TCP: %v", p)
	}
	if ip.DstIP.String() != vip.Addr().String() || !tcp.SYN {
		t.Fatalf("delivered %v -> %v, want the client's SYN to the VIP unchanged", ip.SrcIP, ip.DstIP)
	}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	if r, err := tcp.ComputeChecksum(); err != nil || r != 0 {
		t.Fatalf("TCP checksum not completed (residue %#x, %v)", r, err)
	}
	c := w.ct.Get(0)
	if w.ct.Len() != 1 || service.Fwd(c.Fwd) != service.FwdLocal {
		t.Fatalf("connection forward %v, want Local", service.Fwd(c.Fwd))
	}
}

// TestWorkerSyncFWMark: a persistent fwmark service's connection and
// template reach the backup keyed by the mark. The backup forwards the
// connection's next ring packet to the master's server and port (the
// packet's: the servers have none) as the same fwmark connection, and a
// new connection from the client goes by the template to that server,
// although the backup's own scheduler would pick the other.
func TestWorkerSyncFWMark(t *testing.T) {
	e, m, pc, ps := markEngine(t, true)
	var on atomic.Bool
	on.Store(true)
	m.sync, m.syncing, m.syncQ = &on, true, connsync.NewQueue(64)
	marked(t, e, m, tcpFrame(t, cip, vip, d0MAC, true, false, 0), 1)
	fwd := queued(ps)
	if len(fwd) != 1 {
		t.Fatalf("%d SYNs forwarded", len(fwd))
	}
	_, sip, _ := decode(t, fwd[0])
	rs, _ := netip.AddrFromSlice(sip.DstIP)
	m.handle(ps, rxFrame{buf: tcpFrame(t, netip.AddrPortFrom(rs, 80), cip, d1MAC, true, true, 0)})
	m.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 0)})
	var recs [4]connsync.Record
	n := m.syncQ.Pop(recs[:])
	var conn, tpl *connsync.Record
	for i := range recs[:n] {
		if recs[i].Flags&conntrack.FlagTemplate != 0 {
			tpl = &recs[i]
		} else {
			conn = &recs[i]
		}
	}
	if n != 2 || conn == nil || tpl == nil {
		t.Fatalf("%d records queued %+v, want a connection and a template", n, recs[:n])
	}
	if conn.FWMark != 1 || conn.VAddr != vip.Addr().As4() || conn.VPort != 80 || conn.DAddr != rs.As4() || conn.DPort != 80 ||
		conntrack.State(conn.State) != conntrack.StateEstablished {
		t.Fatalf("connection record %+v: want mark 1, the VIP's port 80 to %v:80, ESTABLISHED", *conn, rs)
	}
	if tpl.FWMark != 1 || tpl.VAddr != [4]byte{0, 0, 0, 1} || tpl.VPort != 0 || tpl.DAddr != rs.As4() || tpl.DPort != 0 {
		t.Fatalf("template record %+v: want mark 1, keyed by 0.0.0.1:0, to %v:0", *tpl, rs)
	}

	eb, b, bc, bs := markEngine(t, true)
	// Another client first, so the backup's rr would now pick the
	// server the master did not.
	marked(t, eb, b, tcpFrame(t, netip.MustParseAddrPort("198.18.0.2:40000"), vip, d0MAC, true, false, 0), 1)
	if out := queued(bs); len(out) != 1 {
		t.Fatalf("the other client's SYN: %d frames", len(out))
	} else if _, ip, _ := decode(t, out[0]); ip.DstIP.String() != rs.String() {
		t.Fatalf("the backup's rr started at %v, the master's at %v: the test needs them alike", ip.DstIP, rs)
	}
	b.importQ = make(chan importRec, 4)
	b.importQ <- importRec{rec: *tpl, clientIf: 1}
	b.importQ <- importRec{rec: *conn, clientIf: 1}
	b.importSynced()
	if in, lost := b.stats.syncIn.load(), b.stats.syncNoService.load(); in != 2 || lost != 0 {
		t.Fatalf("imported %d records, %d without a service: want 2 and 0", in, lost)
	}
	var bconn, btpl *conntrack.Conn
	for _, c := range tableSnapshot(b) {
		switch {
		case c.Orig.Src != cip.Addr().As4(): // the other client's
		case c.IsTemplate():
			btpl = &c
		default:
			bconn = &c
		}
	}
	if bconn == nil || bconn.Flags&conntrack.FlagFwmark == 0 {
		t.Fatalf("imported connection %+v: want a fwmark connection", bconn)
	}
	if btpl == nil || btpl.Orig != (conntrack.Tuple{Src: cip.Addr().As4(), Dst: [4]byte{0, 0, 0, 1}}) {
		t.Fatalf("imported template %+v: want one keyed by mark 1 as an address, port 0", btpl)
	}
	tables := b.ct.Len()

	// The connection's next ACK, from the ring, goes where the master
	// sent it, and the server's answer back from the VIP.
	b.handle(bc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 100)})
	out := queued(bs)
	if len(out) != 1 {
		t.Fatalf("%d frames forwarded for the synced connection", len(out))
	}
	if _, ip, tcp := decode(t, out[0]); ip.DstIP.String() != rs.String() || tcp.DstPort != 80 {
		t.Fatalf("forwarded to %v:%d, want %v:80", ip.DstIP, tcp.DstPort, rs)
	}
	if b.ct.Len() != tables {
		t.Fatalf("the ACK made %d table entries: it was scheduled again", b.ct.Len()-tables)
	}
	b.handle(bs, rxFrame{buf: tcpFrame(t, netip.AddrPortFrom(rs, 80), cip, d1MAC, false, true, 100)})
	if back := queued(bc); len(back) != 1 {
		t.Fatalf("%d replies forwarded", len(back))
	} else if _, ip, tcp := decode(t, back[0]); ip.SrcIP.String() != vip.Addr().String() || tcp.SrcPort != 80 {
		t.Fatalf("reply from %v:%d, want the VIP's port 80", ip.SrcIP, tcp.SrcPort)
	}

	// A new connection of the client, to another port of the mark,
	// follows the template.
	src := netip.AddrPortFrom(cip.Addr(), cip.Port()+1)
	marked(t, eb, b, tcpFrame(t, src, netip.AddrPortFrom(vip.Addr(), 443), d0MAC, true, false, 0), 1)
	out = queued(bs)
	if len(out) != 1 {
		t.Fatalf("the client's new SYN: %d frames", len(out))
	}
	if _, ip, tcp := decode(t, out[0]); ip.DstIP.String() != rs.String() || tcp.DstPort != 443 {
		t.Fatalf("the client's new connection went to %v:%d, the template names %v (port 443 kept)", ip.DstIP, tcp.DstPort, rs)
	}

	// A fwmark connection without its mark (its service gone on the
	// master) is not placed in the address service on its endpoint.
	orphan := *conn
	orphan.FWMark, orphan.VPort, orphan.CPort = 0, 8080, 50000
	b.importQ <- importRec{rec: orphan, clientIf: 1}
	b.importSynced()
	if lost := b.stats.syncNoService.load(); lost != 1 {
		t.Fatalf("a fwmark record without a mark: %d without a service, want 1", lost)
	}
}
