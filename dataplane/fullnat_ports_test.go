package dataplane

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// FULLNAT local ports on an in-memory worker: one local address, one
// real server, so that every candidate port of localPort is a reply
// tuple RIP:8080 -> LIP:lport that the tests can occupy.

var fnatLIP = netip.MustParseAddr("198.19.0.200")

const fnatRSPort = 8080

func fullNATWorker(tb testing.TB) (*worker, *port, *port) {
	tb.Helper()
	m := service.NewModel()
	key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
	if err := m.AddService(service.ServiceConfig{Key: key, Sched: "rr"}); err != nil {
		tb.Fatal(err)
	}
	if err := m.AddDest(key, service.DestConfig{Addr: rip1.As4(), Port: fnatRSPort, Fwd: service.FwdFullNat, Weight: 1}); err != nil {
		tb.Fatal(err)
	}
	if err := m.SetLocalAddrs(key, [][4]byte{fnatLIP.As4()}); err != nil {
		tb.Fatal(err)
	}
	m.SetNextHop(rip1.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
	// Room for a connection on every port of the range, and more.
	w, pc, ps := testWorkerWith(m, 1<<17)
	w.now = 1000 * 1e9
	return w, pc, ps
}

// fnatOpen sends a client's SYN and returns the local port the worker
// chose; the SYN must go to the real server from the local address.
func fnatOpen(t *testing.T, w *worker, pc, ps *port, client netip.AddrPort) uint16 {
	t.Helper()
	w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
	out := queued(ps)
	if len(out) != 1 {
		t.Fatalf("SYN from %v: %d frames to the servers, want 1 (no_local_port drops %d)", client, len(out), w.stats.drops[dropNoLocalPort].load())
	}
	_, ip, tcp := decode(t, out[0])
	if ip.SrcIP.String() != fnatLIP.String() || ip.DstIP.String() != rip1.String() || tcp.DstPort != fnatRSPort {
		t.Fatalf("SYN from %v rewritten to %v:%d -> %v:%d, want %v:* -> %v:%d", client, ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, fnatLIP, rip1, fnatRSPort)
	}
	if tcp.SrcPort < lportMin {
		t.Fatalf("local port %d below %d", tcp.SrcPort, lportMin)
	}
	return uint16(tcp.SrcPort)
}

// fnatReply sends a frame from the real server to LIP:lport and returns
// what reaches the client side.
func fnatReply(t *testing.T, w *worker, pc, ps *port, lport uint16, flags uint8) [][]byte {
	t.Helper()
	w.handle(ps, rxFrame{buf: tcpFlagsFrame(t, netip.AddrPortFrom(rip1, fnatRSPort), netip.AddrPortFrom(fnatLIP, lport), d1MAC, flags, 0)})
	return queued(pc)
}

// fillLocalPorts puts a connection towards the real server on every
// local port of the range but those in keep, as if that many clients
// were connected: each holds the reply tuple RIP:8080 -> LIP:port. Their
// timers run far past anything the tests advance to.
func fillLocalPorts(t *testing.T, w *worker, keep ...uint16) int {
	t.Helper()
	svc := &w.snap.Services[0]
	n := 0
	for p := lportMin; p <= 0xffff; p++ {
		port := uint16(p)
		if slices.Contains(keep, port) {
			continue
		}
		c := conntrack.Conn{
			Orig:  conntrack.Tuple{Src: [4]byte{198, 18, byte(p >> 8), byte(p)}, Dst: vip.Addr().As4(), SPort: 50000, DPort: vip.Port(), Proto: 6},
			Reply: conntrack.Tuple{Src: rip1.As4(), Dst: fnatLIP.As4(), SPort: fnatRSPort, DPort: port, Proto: 6},
			Svc:   svc.ID, Dest: svc.DestIDs[0], Fwd: uint8(service.FwdFullNat),
			ClientIf: 1, ClientMAC: clientMAC, DestIf: 2, DestMAC: rsMAC,
			State: conntrack.StateEstablished, Expires: w.now + 3600e9,
		}
		if _, err := w.ct.Insert(&c); err != nil {
			t.Fatalf("filling local port %d: %v", port, err)
		}
		n++
	}
	return n
}

func tableSnapshot(w *worker) []conntrack.Conn { return w.ct.AppendSnapshot(nil, w.ct.Cap()) }

// TestFullNATLocalPortsExhausted: with the one local address's whole
// port range in use towards the server, a new SYN is refused and counted
// as no_local_port; nothing is queued either way, the table does not
// change, and the connections already there go on.
func TestFullNATLocalPortsExhausted(t *testing.T) {
	w, pc, ps := fullNATWorker(t)
	lport := fnatOpen(t, w, pc, ps, cip)
	filled := fillLocalPorts(t, w, lport)
	if want := 0xffff - lportMin; filled != want {
		t.Fatalf("filled %d ports, want %d", filled, want)
	}
	dest := w.snap.Dests[w.snap.Services[0].DestIDs[0]].Conns
	before := tableSnapshot(w)
	inact, act := dest.Inactive.Load(), dest.Active.Load()

	for i, client := range []netip.AddrPort{
		netip.MustParseAddrPort("198.18.0.7:40001"),
		netip.MustParseAddrPort("198.18.0.8:1024"),
		netip.MustParseAddrPort("198.18.0.9:65535"),
	} {
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
		if n := len(queued(ps)) + len(queued(pc)); n != 0 {
			t.Fatalf("SYN from %v with no free local port: %d frames queued", client, n)
		}
		if got := w.stats.drops[dropNoLocalPort].load(); got != uint64(i+1) {
			t.Fatalf("no_local_port drops %d after %d refused SYNs", got, i+1)
		}
	}
	after := tableSnapshot(w)
	if len(after) != len(before) || !slices.Equal(after, before) {
		t.Fatalf("refused SYNs changed the table: %d entries before, %d after", len(before), len(after))
	}
	if dest.Inactive.Load() != inact || dest.Active.Load() != act {
		t.Errorf("destination counts moved: inactive %d -> %d, active %d -> %d", inact, dest.Inactive.Load(), act, dest.Active.Load())
	}
	if w.svcC[w.snap.Services[0].ID].conns.load() != 1 {
		t.Errorf("service counts %d connections, want the one that got a port", w.svcC[w.snap.Services[0].ID].conns.load())
	}

	// The connection that has a port still works both ways.
	back := fnatReply(t, w, pc, ps, lport, header.TCPFlagSyn|header.TCPFlagAck)
	if len(back) != 1 {
		t.Fatalf("SYN-ACK of the established connection: %d frames to the client, want 1", len(back))
	}
	_, ip, tcp := decode(t, back[0])
	if ip.SrcIP.String() != vip.Addr().String() || tcp.SrcPort != layers.TCPPort(vip.Port()) ||
		ip.DstIP.String() != cip.Addr().String() || tcp.DstPort != layers.TCPPort(cip.Port()) {
		t.Fatalf("reply rewritten to %v:%d -> %v:%d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
	}
	w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, cip, vip, d0MAC, header.TCPFlagAck, 0)})
	if out := queued(ps); len(out) != 1 {
		t.Fatalf("ACK of the established connection: %d frames to the server, want 1", len(out))
	} else if _, ip, tcp := decode(t, out[0]); ip.SrcIP.String() != fnatLIP.String() || uint16(tcp.SrcPort) != lport {
		t.Fatalf("ACK rewritten from %v:%d, want %v:%d", ip.SrcIP, tcp.SrcPort, fnatLIP, lport)
	}
	// A filler connection's reply is still forwarded too.
	if back := fnatReply(t, w, pc, ps, lport+1, header.TCPFlagAck); len(back) != 1 {
		t.Fatalf("reply to a connection on port %d: %d frames to the client, want 1", lport+1, len(back))
	}
}

// TestFullNATLocalPortReuse: a local port whose connection is in
// TIME_WAIT is not given out while the entry is in the table (even with
// its timer run out, until the reaper removes it); once reaped, the port
// serves a new connection.
func TestFullNATLocalPortReuse(t *testing.T) {
	w, pc, ps := fullNATWorker(t)
	lport := fnatOpen(t, w, pc, ps, cip)
	// Handshake, then the client closes first and the server answers:
	// NONE -SYN-> SYN_RECV -SYN+ACK-> SYN_RECV -ACK-> ESTABLISHED
	// -FIN-> CLOSE_WAIT, server FIN -> TIME_WAIT.
	if n := len(fnatReply(t, w, pc, ps, lport, header.TCPFlagSyn|header.TCPFlagAck)); n != 1 {
		t.Fatalf("SYN-ACK: %d frames", n)
	}
	for _, f := range []uint8{header.TCPFlagAck, header.TCPFlagFin | header.TCPFlagAck} {
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, cip, vip, d0MAC, f, 0)})
		if n := len(queued(ps)); n != 1 {
			t.Fatalf("client flags %#x: %d frames to the server", f, n)
		}
	}
	if n := len(fnatReply(t, w, pc, ps, lport, header.TCPFlagFin|header.TCPFlagAck)); n != 1 {
		t.Fatalf("server FIN: %d frames", n)
	}
	k := conntrack.Tuple{Src: rip1.As4(), Dst: fnatLIP.As4(), SPort: fnatRSPort, DPort: lport, Proto: 6}
	id, _, ok := w.ct.Lookup(&k)
	if !ok || w.ct.Get(id).State != conntrack.StateTimeWait {
		t.Fatalf("connection on local port %d: found %v, state %v; want TIME_WAIT", lport, ok, w.ct.Get(id).State)
	}
	tw := w.ct.Get(id).Expires

	// Every other port is taken: only the TIME_WAIT one could serve.
	fillLocalPorts(t, w, lport)
	dest := w.snap.Dests[w.snap.Services[0].DestIDs[0]].Conns
	other := netip.MustParseAddrPort("198.18.0.77:40077")
	refused := func(when string) {
		t.Helper()
		before := w.stats.drops[dropNoLocalPort].load()
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, other, vip, d0MAC, header.TCPFlagSyn, 0)})
		if n := len(queued(ps)); n != 0 || w.stats.drops[dropNoLocalPort].load() != before+1 {
			t.Fatalf("%s: SYN got %d frames out and no_local_port %d -> %d; want it refused", when, n, before, w.stats.drops[dropNoLocalPort].load())
		}
		if _, _, ok := w.ct.Lookup(&k); !ok {
			t.Fatalf("%s: no connection holds local port %d", when, lport)
		}
	}
	timeWait := func(when string) {
		t.Helper()
		if c := w.ct.Get(id); !w.ct.Live(id) || c.Reply != k || c.State != conntrack.StateTimeWait || c.Expires != tw {
			t.Fatalf("%s: the TIME_WAIT connection changed: live %v, %+v", when, w.ct.Live(id), *c)
		}
	}
	refused("in TIME_WAIT")
	timeWait("in TIME_WAIT")

	// The reaper keeps it while its timer runs.
	w.now = tw - 1e9
	if n := w.ct.Reap(w.now, w.ct.Cap(), w.expire); n != 0 {
		t.Fatalf("reaper removed %d entries before TIME_WAIT ran out", n)
	}
	refused("one second before TIME_WAIT runs out")
	timeWait("one second before TIME_WAIT runs out")

	// Timer run out, not yet reaped: still in the table, still taken.
	w.now = tw + 1e9
	refused("expired but not reaped")
	timeWait("expired but not reaped")

	inact := dest.Inactive.Load()
	if n := w.ct.Reap(w.now, w.ct.Cap(), w.expire); n != 1 {
		t.Fatalf("reaper removed %d entries, want the TIME_WAIT one", n)
	}
	if dest.Inactive.Load() != inact-1 {
		t.Errorf("reaping the TIME_WAIT connection: inactive %d -> %d, want one less", inact, dest.Inactive.Load())
	}
	// The freed port is the only one: the search covers the whole range,
	// so the first SYN after the refusals' backoff gets it.
	w.now += lportBackoff
	windows := 1
	var got uint16
	var client netip.AddrPort
	tries := 0
	for i := 0; i < windows && got == 0; i++ {
		tries++
		client = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), 40000)
		before := w.stats.drops[dropNoLocalPort].load()
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
		out := queued(ps)
		switch {
		case len(out) == 1:
			_, ip, tcp := decode(t, out[0])
			if ip.SrcIP.String() != fnatLIP.String() {
				t.Fatalf("new connection from %v", ip.SrcIP)
			}
			got = uint16(tcp.SrcPort)
		case len(out) != 0 || w.stats.drops[dropNoLocalPort].load() != before+1:
			t.Fatalf("SYN %d after the reaper: %d frames, no_local_port %d -> %d", i, len(out), before, w.stats.drops[dropNoLocalPort].load())
		}
	}
	t.Logf("freed local port %d given out at SYN %d after the reaper", lport, tries)
	if got != lport {
		t.Fatalf("after the reaper: new connection on local port %d within %d SYNs, want the freed %d", got, windows, lport)
	}
	id2, _, ok := w.ct.Lookup(&k)
	if !ok || w.ct.Get(id2).Orig.Src != client.Addr().As4() {
		t.Fatalf("reply tuple %+v belongs to %+v, want the new client's connection", k, w.ct.Get(id2).Orig)
	}
	// And the port is taken again.
	other = netip.MustParseAddrPort("198.18.0.78:40078")
	refused("port reused by the new connection")
}

// TestFullNATLocalPortBackoff: after a search finds no free local port,
// SYNs are refused without a search for lportBackoff from that search,
// however many keep coming; then the next SYN searches again and gets a
// port freed meanwhile.
func TestFullNATLocalPortBackoff(t *testing.T) {
	w, pc, ps := fullNATWorker(t)
	fillLocalPorts(t, w)
	syn := func(i int) int {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 3, byte(i)}), 40000)
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
		return len(queued(ps))
	}
	if syn(0) != 0 {
		t.Fatal("a SYN got a port with every port taken")
	}
	failed := w.now
	// Free one port; SYNs within the backoff still see none.
	var freed conntrack.Tuple
	w.ct.Range(func(id uint32, c *conntrack.Conn) bool {
		freed = c.Orig
		w.ct.Delete(id)
		return false
	})
	for i := 1; i < 5; i++ {
		w.now = failed + int64(i)*lportBackoff/5
		if syn(i) != 0 {
			t.Fatalf("SYN %d within the backoff got a port", i)
		}
	}
	w.now = failed + lportBackoff
	if syn(9) != 1 {
		t.Fatalf("after the backoff from the failed search, a SYN found no port (freed %+v)", freed)
	}
}

// TestFullNATExhaustedAddressPassedOver: with one local address's ports
// all taken towards a server, new connections go to the other address
// without a search of the full one before each (the addresses take
// turns); a second later the full one is searched again.
func TestFullNATExhaustedAddressPassedOver(t *testing.T) {
	w, pc, ps := fullNATWorker(t)
	lipB := netip.MustParseAddr("198.19.0.201")
	key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
	if err := w.model.SetLocalAddrs(key, [][4]byte{fnatLIP.As4(), lipB.As4()}); err != nil {
		t.Fatal(err)
	}
	w.adopt(w.model.Snapshot())
	fillLocalPorts(t, w)
	for i := range 100 {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 5, byte(i)}), 40000)
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
		out := queued(ps)
		if len(out) != 1 {
			t.Fatalf("SYN %d: %d frames, want 1 (the other address has free ports)", i, len(out))
		}
		if _, ip, _ := decode(t, out[0]); ip.SrcIP.String() != lipB.String() {
			t.Fatalf("SYN %d went out from %v, want %v", i, ip.SrcIP, lipB)
		}
		w.now += int64(time.Millisecond)
	}
	if w.lportMisses != 1 {
		t.Fatalf("%d failed searches of the full address over 100 SYNs, want 1", w.lportMisses)
	}
	w.now += pairBackoff
	for i := range 2 {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 6, byte(i)}), 40000)
		w.handle(pc, rxFrame{buf: tcpFlagsFrame(t, client, vip, d0MAC, header.TCPFlagSyn, 0)})
		queued(ps)
	}
	if w.lportMisses != 2 {
		t.Fatalf("%d failed searches after the pair's backoff, want the full address searched once more (2)", w.lportMisses)
	}
}

// TestFullNATReuseReservesPort: a client that reuses its port while its
// old FULLNAT connection is in TIME_WAIT gets a new connection (IPVS's
// conn_reuse_mode), but the old local endpoint stays taken towards the
// server for a TIME_WAIT period: the server, which closed first, still
// holds that tuple and would refuse a new SYN from it. Late packets to
// the old endpoint go nowhere; after the period the port is free again.
func TestFullNATReuseReservesPort(t *testing.T) {
	w, pc, ps := fullNATWorker(t)
	client := netip.AddrPortFrom(netip.MustParseAddr("198.18.7.1"), 40000)
	old := fnatOpen(t, w, pc, ps, client)
	orig := conntrack.Tuple{Src: client.Addr().As4(), Dst: vip.Addr().As4(), SPort: client.Port(), DPort: vip.Port(), Proto: 6}
	oid, _, ok := w.ct.Lookup(&orig)
	if !ok {
		t.Fatal("no connection after the SYN")
	}
	w.ct.Get(oid).State = conntrack.StateTimeWait // as after the server's and the client's FINs
	fresh := fnatOpen(t, w, pc, ps, client)
	if fresh == old {
		t.Fatalf("the reused client port got the old local port %d back", old)
	}
	oldReply := conntrack.Tuple{Src: rip1.As4(), Dst: fnatLIP.As4(), SPort: fnatRSPort, DPort: old, Proto: 6}
	id, _, found := w.ct.Lookup(&oldReply)
	if !found || !w.ct.Get(id).IsReserved() {
		t.Fatalf("old local endpoint %d: no reservation (found %v)", old, found)
	}
	if out := fnatReply(t, w, pc, ps, old, header.TCPFlagAck); len(out) != 0 {
		t.Fatalf("a late packet to the reserved endpoint was forwarded: %d frames", len(out))
	}
	if n := len(tableSnapshot(w)); n != 2 {
		t.Fatalf("%d entries, want the new connection and the reservation", n)
	}
	// The reservation counts in no destination's connections.
	if cc := w.snap.Dests[w.snap.Services[0].DestIDs[0]].Conns; cc.Active.Load()+cc.Inactive.Load() != 1 {
		t.Fatalf("destination counts %d active, %d inactive, want the new connection alone", cc.Active.Load(), cc.Inactive.Load())
	}
	w.now += w.timeouts.Timeout(conntrack.StateTimeWait) + 1
	w.ct.Reap(w.now, w.ct.Cap(), w.expire)
	if _, _, ok := w.ct.Lookup(&oldReply); ok {
		t.Fatal("the reservation outlived its TIME_WAIT period")
	}
}
