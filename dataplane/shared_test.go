package dataplane

import (
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/service"
)

// TestSharedSchedulerSequence: with two workers, new connections landing
// on either one follow the single sequence IPVS's scheduler would give
// (wrr with weights 4, 3, 2: IPVS's gcd/max stepping), because stateful
// schedulers are shared by the workers.
func TestSharedSchedulerSequence(t *testing.T) {
	for _, name := range []string{"rr", "wrr"} {
		t.Run(name, func(t *testing.T) {
			m := service.NewModel()
			key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
			if err := m.AddService(service.ServiceConfig{Key: key, Sched: name}); err != nil {
				t.Fatal(err)
			}
			rips := []netip.Addr{rip1, rip2, netip.MustParseAddr("198.19.0.13")}
			for i, r := range rips {
				if err := m.AddDest(key, service.DestConfig{Addr: r.As4(), Port: 8080, Weight: int32(4 - i)}); err != nil {
					t.Fatal(err)
				}
				m.SetNextHop(r.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
			}
			shared := &sharedScheds{}
			mk := func() (*worker, *port, *port) {
				return withPorts(&worker{model: m, batch: 64, ct: conntrack.New(1<<12, 1), nworkers: 2, shared: shared})
			}
			w0, pc0, ps0 := mk()
			w1, pc1, ps1 := mk()
			// One worker: the reference sequence.
			ref, refc, refs := testWorkerWith(m, 1<<12)
			for i := range 18 {
				client := netip.AddrPortFrom(cip.Addr(), uint16(20000+i))
				syn := tcpFrame(t, client, vip, d0MAC, true, false, 0)
				w, pc, ps := w0, pc0, ps0
				if i%3 == 1 {
					w, pc, ps = w1, pc1, ps1
				}
				w.handle(pc, rxFrame{buf: append([]byte(nil), syn...)})
				ref.handle(refc, rxFrame{buf: syn})
				got, want := queued(ps), queued(refs)
				if len(got) != 1 || len(want) != 1 {
					t.Fatalf("connection %d: %d and %d frames", i, len(got), len(want))
				}
				_, gip, _ := decode(t, got[0])
				_, wip, _ := decode(t, want[0])
				if !gip.DstIP.Equal(wip.DstIP) {
					t.Fatalf("connection %d: two workers picked %v, one scheduler %v", i, gip.DstIP, wip.DstIP)
				}
			}
		})
	}
}
