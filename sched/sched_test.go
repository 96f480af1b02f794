package sched

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// allNames are the IPVS schedulers uvs implements.
var allNames = []string{
	"rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf",
	"sh", "dh", "mh", "lblc", "lblcr", "twos",
}

// dests returns available destinations 10.0.0.1:80, 10.0.0.2:80, ... in
// list order with the given weights and no connections.
func dests(weights ...int32) []Dest {
	ds := make([]Dest, len(weights))
	for i, w := range weights {
		ds[i] = Dest{
			Addr:   netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}),
			Port:   80,
			Weight: w,
			Flags:  DestAvailable,
			Conns:  new(ConnCounts),
		}
	}
	return ds
}

func setConns(d *Dest, active, inactive int32) {
	d.Conns.Active.Store(active)
	d.Conns.Inactive.Store(inactive)
}

func newSched(t testing.TB, name string, f Flags) Scheduler {
	t.Helper()
	s, err := New(name, f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tcp is a TCP SYN from src to dst.
func tcp(src, dst string) *Packet {
	return &Packet{Proto: protoTCP, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
}

// picks runs n Schedules with the same packet.
func picks(s Scheduler, ds []Dest, p *Packet, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = s.Schedule(ds, p)
	}
	return out
}

func TestRegistry(t *testing.T) {
	names := Names()
	slices.Sort(names)
	want := slices.Clone(allNames)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("Names() = %v, want %v", names, want)
	}
	if _, err := New("nope", 0); !errors.Is(err, ErrUnknown) {
		t.Fatalf("New(nope) error = %v, want ErrUnknown", err)
	}
}

func TestEmptyService(t *testing.T) {
	p := tcp("192.0.2.1:1000", "198.51.100.1:80")
	for _, n := range allNames {
		s := newSched(t, n, FlagSHFallback)
		s.Update(nil)
		if got := s.Schedule(nil, p); got != -1 {
			t.Errorf("%s: Schedule with no dests = %d, want -1", n, got)
		}
	}
}

// benchDests is a service of 100 real servers with mixed weights and loads.
func benchDests() []Dest {
	ds := make([]Dest, 100)
	for i := range ds {
		ds[i] = Dest{
			Addr:   netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(i%250 + 1)}),
			Port:   8080,
			Weight: int32(1 + i%7),
			Flags:  DestAvailable,
			Conns:  new(ConnCounts),
		}
		setConns(&ds[i], int32(50+(i*37)%100), int32((i*91)%300))
	}
	return ds
}

// benchPackets are SYNs from many clients to many destination addresses.
func benchPackets() []Packet {
	ps := make([]Packet, 4096)
	for i := range ps {
		ps[i] = Packet{
			Proto: protoTCP,
			Src:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), uint16(1024+i*7)),
			Dst:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80),
			Now:   int64(i) * 1000,
		}
	}
	return ps
}

// TestScheduleDoesNotAllocate holds every scheduler to the interface's
// zero-allocation rule with a realistic service.
func TestScheduleDoesNotAllocate(t *testing.T) {
	ds := benchDests()
	ps := benchPackets()
	for _, n := range allNames {
		for _, f := range []Flags{0, FlagSHFallback | FlagSHPort} {
			s := newSched(t, n, f)
			s.Update(ds)
			i := 0
			allocs := testing.AllocsPerRun(2000, func() {
				s.Schedule(ds, &ps[i%len(ps)])
				i++
			})
			if allocs != 0 {
				t.Errorf("%s (flags %#x): %v allocs per Schedule, want 0", n, f, allocs)
			}
		}
	}
}

// TestInstancesIndependent runs interleaved instances of each scheduler
// against one run alone: no state is shared through globals.
func TestInstancesIndependent(t *testing.T) {
	ds := benchDests()
	for i := range ds {
		if i%9 == 0 {
			ds[i].Flags |= DestOverload
		}
	}
	ps := benchPackets()[:1500]
	for _, n := range allNames {
		f := FlagSHFallback
		alone := newSched(t, n, f)
		alone.Update(ds)
		want := make([]int, len(ps))
		for i := range ps {
			want[i] = alone.Schedule(ds, &ps[i])
		}
		many := make([]Scheduler, 5)
		for k := range many {
			many[k] = newSched(t, n, f)
			many[k].Update(ds)
		}
		for i := range ps {
			for k, s := range many {
				if got := s.Schedule(ds, &ps[i]); got != want[i] {
					t.Fatalf("%s: instance %d of %d, packet %d: got %d, want %d", n, k, len(many), i, got, want[i])
				}
			}
		}
	}
}

func BenchmarkSchedule(b *testing.B) {
	ds := benchDests()
	ps := benchPackets()
	for _, n := range allNames {
		b.Run(n, func(b *testing.B) {
			s := newSched(b, n, 0)
			s.Update(ds)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.Schedule(ds, &ps[i&(len(ps)-1)])
				i++
			}
		})
	}
}
