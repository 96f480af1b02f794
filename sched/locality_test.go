package sched

import (
	"net/netip"
	"testing"
	"time"
)

const (
	sec  = int64(time.Second)
	hour = int64(time.Hour)
)

// to is a SYN towards destination address dst at time now.
func to(dst string, now int64) *Packet {
	return &Packet{
		Proto: protoTCP,
		Src:   netip.MustParseAddrPort("192.0.2.10:40000"),
		Dst:   netip.AddrPortFrom(netip.MustParseAddr(dst), 80),
		Now:   now,
	}
}

func TestLBLC(t *testing.T) {
	ds := dests(1, 1, 1)
	s := newSched(t, "lblc", 0)
	s.Update(ds)
	x := "203.0.113.1"
	if got := s.Schedule(ds, to(x, 0)); got != 0 {
		t.Fatalf("first pick %d, want wlc's 0", got)
	}
	// Cached: 0 keeps x while it is not overloaded in lblc's sense, even
	// when wlc would now prefer another, and even with DestOverload set.
	setConns(&ds[0], 1, 50)
	ds[0].Flags |= DestOverload
	if got := s.Schedule(ds, to(x, sec)); got != 0 {
		t.Fatalf("cached pick %d, want 0", got)
	}
	// Another address goes to wlc's choice, which skips DestOverload.
	if got := s.Schedule(ds, to("203.0.113.2", sec)); got != 1 {
		t.Fatalf("new address: %d, want 1", got)
	}
	ds[0].Flags &^= DestOverload
	// active 2 > weight 1 while dest 2 has 0*2 < 1: overloaded, x moves to
	// wlc's choice (dest 1 has 0 conns too but the new address put none
	// on it: counters are the dataplane's), the first least loaded.
	setConns(&ds[0], 2, 0)
	if got := s.Schedule(ds, to(x, 2*sec)); got != 1 {
		t.Fatalf("after overload: %d, want 1", got)
	}
	if got := s.Schedule(ds, to(x, 3*sec)); got != 1 {
		t.Fatalf("new mapping not cached: %d", got)
	}
	// If every dest is at least half full, nothing is "less loaded": the
	// cached one stays even above its weight.
	for i := range ds {
		setConns(&ds[i], 1, 0)
	}
	setConns(&ds[1], 5, 0)
	if got := s.Schedule(ds, to(x, 4*sec)); got != 1 {
		t.Fatalf("no less loaded dest: %d, want 1", got)
	}
	// Removing the cached dest: rescheduled; adding it back, the old
	// mapping is gone (replaced), so x stays where it went.
	for i := range ds {
		setConns(&ds[i], 0, 0)
	}
	rest := []Dest{ds[0], ds[2]}
	s.Update(rest)
	if got := s.Schedule(rest, to(x, 5*sec)); got != 0 {
		t.Fatalf("after removal: %d, want 0 (10.0.0.1)", got)
	}
	s.Update(ds)
	if got := s.Schedule(ds, to(x, 6*sec)); got != 0 {
		t.Fatalf("after re-adding: %d, want 0", got)
	}
	// Weight 0 on the cached dest: rescheduled.
	ds[0].Weight = 0
	s.Update(ds)
	if got := s.Schedule(ds, to(x, 7*sec)); got != 1 {
		t.Fatalf("quiesced cached dest: %d, want 1", got)
	}
}

// TestLBLCRemovedAndBack: a dest removed and added back is the same dest
// to a cache entry that still names it, as the kernel's trash dest is.
func TestLBLCRemovedAndBack(t *testing.T) {
	ds := dests(1, 1)
	s := newSched(t, "lblc", 0)
	s.Update(ds)
	setConns(&ds[0], 0, 9)
	if got := s.Schedule(ds, to("203.0.113.1", 0)); got != 1 {
		t.Fatalf("first pick %d, want 1", got)
	}
	s.Update(ds[:1])
	swapped := []Dest{ds[1], ds[0]} // back, at the head as IPVS adds
	s.Update(swapped)
	setConns(&ds[1], 0, 100) // wlc would pick 10.0.0.1 now
	if got := s.Schedule(swapped, to("203.0.113.1", sec)); got != 0 {
		t.Fatalf("after remove and re-add: %d, want 0 (10.0.0.2)", got)
	}
}

// TestLBLCExpiry drives the periodic check with Packet.Now: below the
// table's max size only the full check, every 30th minute, drops entries,
// those idle for 24 hours.
func TestLBLCExpiry(t *testing.T) {
	ds := dests(10, 10)
	s := newSched(t, "lblc", 0).(*lblc)
	s.Update(ds)
	x := "203.0.113.1"
	if got := s.Schedule(ds, to(x, 0)); got != 0 {
		t.Fatal(got)
	}
	setConns(&ds[0], 1, 0) // not overloaded: cached 0 stays, wlc would say 1
	if got := s.Schedule(ds, to(x, hour)); got != 0 {
		t.Fatalf("cached after 1h: %d", got)
	}
	// Idle 23h59m: still there.
	if got := s.Schedule(ds, to(x, hour+24*hour-time.Minute.Nanoseconds())); got != 0 {
		t.Fatalf("cached after 23h59m idle: %d", got)
	}
	last := hour + 24*hour - time.Minute.Nanoseconds()
	// Idle 25h: a full check ran at some minute past 24h of idleness.
	if got := s.Schedule(ds, to(x, last+25*hour)); got != 1 {
		t.Fatalf("after 25h idle: %d, want a fresh wlc pick 1", got)
	}
	if s.tbl.count != 1 {
		t.Fatalf("%d entries, want 1", s.tbl.count)
	}
}

// TestLBLCGarbageCollection: above max size (16384 entries) a check drops
// entries idle for 6 minutes, 4/3 of the excess at a time.
func TestLBLCGarbageCollection(t *testing.T) {
	ds := dests(1, 1)
	s := newSched(t, "lblc", 0).(*lblc)
	s.Update(ds)
	const n = locMaxSize + 3000
	for i := range n {
		a := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		s.Schedule(ds, &Packet{Dst: netip.AddrPortFrom(a, 80), Now: int64(i)})
	}
	if s.tbl.count != n {
		t.Fatalf("%d entries, want %d", s.tbl.count, n)
	}
	// The first check (at 60 s) finds nothing idle 6 minutes yet.
	s.Schedule(ds, to("203.0.113.1", 61*sec))
	if s.tbl.count != n+1 {
		t.Fatalf("%d entries after the first check, want %d", s.tbl.count, n+1)
	}
	// At 7 minutes: goal (3001*4/3 = 4001) entries, whole buckets, go.
	s.Schedule(ds, to("203.0.113.2", 7*60*sec))
	if c := s.tbl.count; c > n+2-4001 || c < n+2-4001-200 {
		t.Fatalf("%d entries after collection, want about %d", c, n+2-4001)
	}
}

func TestLBLCR(t *testing.T) {
	ds := dests(1, 1, 1)
	s := newSched(t, "lblcr", 0).(*lblcr)
	s.Update(ds)
	x := "203.0.113.1"
	if got := s.Schedule(ds, to(x, 0)); got != 0 {
		t.Fatalf("first pick %d, want 0", got)
	}
	// 0 overloaded in lblc's sense: wlc's choice 1 joins the set.
	setConns(&ds[0], 5, 0)
	if got := s.Schedule(ds, to(x, sec)); got != 1 {
		t.Fatalf("second pick %d, want 1", got)
	}
	e := s.tbl.get(makeCacheAddr(netip.MustParseAddr(x)))
	if n := s.tbl.entries[e].setSize; n != 2 {
		t.Fatalf("set size %d, want 2", n)
	}
	// The set's least loaded member serves, even with other dests idle.
	setConns(&ds[1], 1, 0)
	if got := s.Schedule(ds, to(x, 12*hour)); got != 1 {
		t.Fatalf("set member: %d, want 1", got)
	}
	// DestOverload members are not candidates: 0 is lblc-overloaded too,
	// so wlc picks 2 and it joins.
	ds[1].Flags |= DestOverload
	if got := s.Schedule(ds, to(x, 12*hour+sec)); got != 2 {
		t.Fatalf("overloaded member: %d, want 2", got)
	}
	ds[1].Flags &^= DestOverload
	setConns(&ds[2], 1, 0)
	if n := s.tbl.entries[e].setSize; n != 3 {
		t.Fatalf("set size %d, want 3", n)
	}
	// 24h after the last change, each use drops the most loaded member (0,
	// 5 active) while more than one is left.
	if got := s.Schedule(ds, to(x, 12*hour+sec+24*hour+1)); got != 2 {
		t.Fatalf("pick at shrink: %d, want 2 (newest of the tie)", got)
	}
	if n := s.tbl.entries[e].setSize; n != 2 {
		t.Fatalf("set size %d after shrink, want 2", n)
	}
	// The shrink stamped the set: no further shrink for 24h.
	s.Schedule(ds, to(x, 12*hour+2*sec+24*hour))
	if n := s.tbl.entries[e].setSize; n != 2 {
		t.Fatalf("set size %d, want 2", n)
	}
	// A removed member is no candidate but can still be shrunk away.
	rest := []Dest{ds[0], ds[1]}
	s.Update(rest)
	if got := s.Schedule(rest, to(x, 12*hour+3*sec+24*hour)); got != 1 {
		t.Fatalf("after removing 2: %d, want 1", got)
	}
}

// TestLBLCRTableFull: with every entry taken, new addresses are still
// scheduled, only not cached, as when the kernel's allocation fails.
func TestLBLCRTableFull(t *testing.T) {
	ds := dests(1, 1)
	s := newSched(t, "lblcr", 0).(*lblcr)
	s.Update(ds)
	for i := range locCapacity + 10 {
		a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
		if got := s.Schedule(ds, &Packet{Dst: netip.AddrPortFrom(a, 80), Now: int64(i)}); got != 0 {
			t.Fatalf("packet %d: %d", i, got)
		}
	}
	if s.tbl.count != locCapacity {
		t.Fatalf("%d entries, want %d", s.tbl.count, locCapacity)
	}
}
