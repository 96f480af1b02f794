package dataplane

import (
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/sched"
	"github.com/uvs-project/uvs/service"
)

// TestWorkerRemovedDest: IPVS's rule for a connection whose real server
// was removed (ip_vs_in, "the destination server is not available"): its
// client packets are dropped silently, the entry stays until it times out
// (expire_nodest_conn 0) or goes at once (1); adding the server back
// revives the connection, as IPVS's trash does.
func TestWorkerRemovedDest(t *testing.T) {
	for _, expire := range []bool{false, true} {
		w, pc, ps := testWorker(t, "rr")
		w.model.SetExpireNodestConn(expire)
		w.adopt(w.model.Snapshot())
		w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, true, false, 0)})
		fwd := queued(ps)
		if len(fwd) != 1 {
			t.Fatalf("%d SYNs forwarded", len(fwd))
		}
		_, ip, _ := decode(t, fwd[0])
		rs, _ := netip.AddrFromSlice(ip.DstIP)
		key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
		if err := w.model.DelDest(key, rs.As4(), 8080); err != nil {
			t.Fatal(err)
		}
		w.adopt(w.model.Snapshot())
		w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 10)})
		if n := len(queued(ps)); n != 0 {
			t.Fatalf("expire=%v: %d packets forwarded to a removed server", expire, n)
		}
		if got := w.stats.drops[dropDestGone].load(); got != 1 {
			t.Fatalf("expire=%v: dest_unavailable %d, want 1", expire, got)
		}
		if want := map[bool]int{false: 1, true: 0}[expire]; w.ct.Len() != want {
			t.Fatalf("expire=%v: %d connections left, want %d", expire, w.ct.Len(), want)
		}
		if expire {
			continue
		}
		if err := w.model.AddDest(key, service.DestConfig{Addr: rs.As4(), Port: 8080, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		w.model.SetNextHop(rs.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
		w.adopt(w.model.Snapshot())
		w.handle(pc, rxFrame{buf: tcpFrame(t, cip, vip, d0MAC, false, true, 10)})
		if n := len(queued(ps)); n != 1 {
			t.Fatalf("%d packets forwarded after the server came back, want 1", n)
		}
	}
}

// TestWorkerOnePacket: with ops, every UDP datagram is scheduled on its
// own, even from one client port, and no connection stays in the table.
func TestWorkerOnePacket(t *testing.T) {
	m := service.NewModel()
	key := service.Key{Proto: 17, Addr: vip.Addr().As4(), Port: 53}
	if err := m.AddService(service.ServiceConfig{Key: key, Sched: "rr", SchedFlags: sched.FlagOnePacket}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []netip.Addr{rip1, rip2} {
		if err := m.AddDest(key, service.DestConfig{Addr: r.As4(), Port: 5353, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		m.SetNextHop(r.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
	}
	w, pc, ps := testWorkerWith(m, 1<<10)
	var got []string
	for range 4 {
		w.handle(pc, rxFrame{buf: udpFrame(t, cip, netip.AddrPortFrom(vip.Addr(), 53), d0MAC, 8)})
		out := queued(ps)
		if len(out) != 1 {
			t.Fatalf("%d datagrams forwarded", len(out))
		}
		got = append(got, netip.AddrFrom4([4]byte(out[0][vnetHdrLen+14+16:vnetHdrLen+14+20])).String())
	}
	if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] {
		t.Fatalf("ops picks %v: want every datagram scheduled, alternating under rr", got)
	}
	if w.ct.Len() != 0 {
		t.Fatalf("%d entries left in the table", w.ct.Len())
	}
	if n := w.snap.Dests[0].Conns.Inactive.Load() + w.snap.Dests[1].Conns.Inactive.Load(); n != 0 {
		t.Fatalf("inactive count %d, want 0", n)
	}
}
