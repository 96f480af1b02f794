package sched

import (
	"math"
	"net/netip"
	"testing"
)

// mhLookup returns the lookup table of a default-size mh for ds.
func mhLookup(t *testing.T, f Flags, ds []Dest) []int32 {
	t.Helper()
	s := newSched(t, "mh", f)
	s.Update(ds)
	return s.(*mh).lookup
}

// TestMHGolden pins the default (CONFIG_IP_VS_MH_TAB_INDEX=12, M=4093)
// table for 10.0.0.1:80, 10.0.0.2:80, 10.0.0.3:80, weight 1 each, in that
// list order.
//
// How it follows ip_vs_mh.c: ip_vs_mh_permutate gives dest i
// offset = hsiphash(v, key1) % 4093 and skip = hsiphash(v, key2) % 4092 + 1
// with v = u32 0 + ntohs(80) + ntohl(10.0.0.i) = 0x0a000050 + i, key1 both
// words 2654435761, key2 both words 2654446892 (generate_hash_secret), and
// hsiphash on a 64-bit kernel being SipHash-1-3 of the four bytes of v,
// truncated to u32 (checked against the kernel's own vectors in
// TestSipHashVectors). That gives offsets 3167, 1231, 1631 and skips 700,
// 3544, 3453. gcd is 1, rshift 0 (fls(1) - 6 < 0), so every dest has one
// turn per round; ip_vs_mh_populate then walks the list round after round,
// each dest taking the next free slot of offset, offset+skip, ... mod 4093
// until all 4093 are taken. With equal turns the counts come out 1365,
// 1364, 1364, the first dest taking the last slot.
func TestMHGolden(t *testing.T) {
	lookup := mhLookup(t, 0, dests(1, 1, 1))
	for i, want := range []struct{ offset, skip uint32 }{{3167, 700}, {1231, 3544}, {1631, 3453}} {
		fold := addrFold(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}))
		if o, s := mhHash(mhKey1, fold, 80, 0)%4093, mhHash(mhKey2, fold, 80, 0)%4092+1; o != want.offset || s != want.skip {
			t.Errorf("dest %d: offset %d skip %d, want %d %d", i, o, s, want.offset, want.skip)
		}
		if lookup[want.offset] != int32(i) {
			t.Errorf("slot %d (dest %d's first choice) holds %d", want.offset, i, lookup[want.offset])
		}
	}
	// Run-length encoding of the table from slot 0: {dest, run length}.
	golden := [][2]int32{
		{0, 1}, {1, 2}, {2, 2}, {0, 1}, {1, 1}, {2, 2}, {0, 2}, {1, 2}, {0, 2}, {2, 1},
		{1, 2}, {0, 2}, {2, 1}, {1, 1}, {2, 2}, {1, 1}, {0, 1}, {1, 1}, {0, 2}, {2, 2},
		{1, 1}, {0, 1}, {2, 2}, {1, 1}, {2, 1}, {0, 1}, {2, 1}, {0, 1}, {1, 1}, {0, 1},
		{1, 2}, {0, 1}, {1, 2}, {2, 3}, {1, 1}, {2, 3}, {0, 1}, {1, 3}, {0, 2}, {1, 2},
	}
	slot := 0
	for _, run := range golden {
		for range run[1] {
			if lookup[slot] != run[0] {
				t.Fatalf("slot %d holds dest %d, golden run says %d", slot, lookup[slot], run[0])
			}
			slot++
		}
	}
	if lookup[slot] == golden[len(golden)-1][0] {
		t.Fatalf("slot %d continues the last golden run", slot)
	}
	assertCounts(t, lookup, []int{1365, 1364, 1364})
}

func assertCounts(t *testing.T, lookup []int32, want []int) {
	t.Helper()
	got := make([]int, len(want))
	for _, d := range lookup {
		if d < 0 || int(d) >= len(want) {
			t.Fatalf("slot holds %d", d)
		}
		got[d]++
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots per dest %v, want %v", got, want)
		}
	}
}

// TestMHWeights: per round dest i takes turns_i slots, turns =
// (weight/gcd) >> rshift, at least 1 for a non-zero weight.
func TestMHWeights(t *testing.T) {
	// 1 2 3: 6 slots a round, 4093 = 682*6 + 1.
	assertCounts(t, mhLookup(t, 0, dests(1, 2, 3)), []int{683, 1364, 2046})
	// 10 20 30: gcd 10, the same turns.
	assertCounts(t, mhLookup(t, 0, dests(10, 20, 30)), []int{683, 1364, 2046})
	// 1 1000: fls(1000) = 10, rshift 10-6 = 4; turns 1>>4 = 0 -> 1 and
	// 1000>>4 = 62: 63 a round, 4093 = 64*63 + 61 (1 + 60).
	assertCounts(t, mhLookup(t, 0, dests(1, 1000)), []int{65, 4028})
	// A dest added with weight 0 gets no turn.
	assertCounts(t, mhLookup(t, 0, dests(0, 1)), []int{0, 4093})
	// All zero: empty table.
	for _, d := range mhLookup(t, 0, dests(0, 0)) {
		if d != -1 {
			t.Fatal("all-zero weights filled the table")
		}
	}
}

// TestMHTableSizes: other CONFIG_IP_VS_MH_TAB_INDEX values, such as 16
// (65521 slots), build tables of that prime.
func TestMHTableSizes(t *testing.T) {
	s, err := NewMH(0, 16)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(dests(1, 2))
	// 65521 = 21840*3 + 1.
	assertCounts(t, s.(*mh).lookup, []int{21841, 43680})
	if _, err := NewMH(0, 18); err == nil {
		t.Fatal("NewMH(18) accepted")
	}
}

// TestMHQuiesce: weight 0 keeps last_weight, so the table does not move;
// the quiesced dest's keys find no server, or another one with
// mh-fallback.
func TestMHQuiesce(t *testing.T) {
	ds := dests(1, 1, 1)
	s := newSched(t, "mh", 0)
	s.Update(ds)
	before := append([]int32(nil), s.(*mh).lookup...)
	ds[1].Weight = 0
	s.Update(ds)
	for i, d := range s.(*mh).lookup {
		if d != before[i] {
			t.Fatalf("slot %d moved from %d to %d on quiescing", i, before[i], d)
		}
	}
	fb := newSched(t, "mh", FlagSHFallback)
	fb.Update(dests(1, 1, 1))
	fb.Update(ds)
	lost := 0
	for i := range 3000 {
		p := &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 999)}
		got, alt := s.Schedule(ds, p), fb.Schedule(ds, p)
		if got == 1 || alt == 1 || alt < 0 {
			t.Fatalf("quiesced dest picked, or fallback found none: %d %d", got, alt)
		}
		if got < 0 {
			lost++
		} else if alt != got {
			t.Fatalf("fallback changed an available pick: %d -> %d", got, alt)
		}
	}
	if lost == 0 {
		t.Fatal("no key mapped to the quiesced dest")
	}
	// Removing it and adding it back with weight 0 is an add: last_weight
	// 0, no slots.
	s.Update([]Dest{ds[0], ds[2]})
	s.Update(ds)
	for _, d := range s.(*mh).lookup {
		if d == 1 {
			t.Fatal("re-added weight-0 dest holds slots")
		}
	}
}

// TestMHDisruption: when one of N equal servers goes, slots of the others
// stay put but for about 1% (Maglev's near-minimal disruption, well under
// the 1/N bound), and the same holds for keys: all keys remapped, the gone
// server's included, stay within about 1/N. Run with the default table
// (CONFIG_IP_VS_MH_TAB_INDEX=12, 4093 slots) and with index 16 (65521).
func TestMHDisruption(t *testing.T) {
	const n = 10
	ws := make([]int32, n)
	for i := range ws {
		ws[i] = 1
	}
	ds := dests(ws...)
	for _, tab := range []struct {
		index int
		size  int
	}{{MHDefaultTabIndex, 4093}, {16, 65521}} {
		newMH := func() Scheduler {
			s, err := NewMH(0, tab.index)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		full := newMH()
		full.Update(ds)
		if got := len(full.(*mh).lookup); got != tab.size {
			t.Fatalf("index %d: %d slots, want %d", tab.index, got, tab.size)
		}
		for gone := range n {
			rest := append(append([]Dest(nil), ds[:gone]...), ds[gone+1:]...)
			less := newMH()
			less.Update(rest)
			la, lb := full.(*mh).lookup, less.(*mh).lookup
			moved := 0
			for i := range la {
				if int(la[i]) != gone && destKey(&ds[la[i]]) != destKey(&rest[lb[i]]) {
					moved++
				}
			}
			if f := float64(moved) / float64(len(la)); f > 0.02 {
				t.Errorf("index %d: removing dest %d moved %.2f%% of the other slots, want <= 2%%", tab.index, gone, 100*f)
			}
			const total = 20000
			keys, movedKeys, allMoved := 0, 0, 0
			for i := range total {
				p := &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 1)}
				a := full.Schedule(ds, p)
				if a == gone {
					allMoved++
					continue
				}
				keys++
				if destKey(&ds[a]) != destKey(&rest[less.Schedule(rest, p)]) {
					movedKeys++
					allMoved++
				}
			}
			if f := float64(movedKeys) / float64(keys); f > 1.0/n/4 {
				t.Errorf("index %d: removing dest %d remapped %.2f%% of the other keys", tab.index, gone, 100*f)
			}
			if f := float64(allMoved) / total; f > 1.25/n {
				t.Errorf("index %d: removing dest %d remapped %.2f%% of all keys, want about 1/%d", tab.index, gone, 100*f, n)
			}
		}
	}
}

// TestMHDistribution: sources follow the weights within 1.5%.
func TestMHDistribution(t *testing.T) {
	ds := dests(1, 2, 3)
	s := newSched(t, "mh", FlagSHPort)
	s.Update(ds)
	counts := make([]int, len(ds))
	const n = 60000
	for i := range n {
		p := &Packet{Proto: protoUDP, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 20, byte(i >> 8), byte(i)}), uint16(i*13))}
		counts[s.Schedule(ds, p)]++
	}
	for i, w := range []float64{1, 2, 3} {
		if got, want := float64(counts[i])/n, w/6; math.Abs(got-want) > 0.015 {
			t.Errorf("dest %d share %.4f, want %.4f", i, got, want)
		}
	}
}

// TestMHPortAndFallback covers mh-port and mh-fallback on one service.
func TestMHPortAndFallback(t *testing.T) {
	ds := dests(1, 1, 1, 1)
	noPort := newSched(t, "mh", 0)
	port := newSched(t, "mh", FlagSHPort)
	noPort.Update(ds)
	port.Update(ds)
	src := netip.MustParseAddr("198.18.5.5")
	seen := map[int]bool{}
	for sp := range 200 {
		p := &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(src, uint16(40000+sp))}
		if noPort.Schedule(ds, p) != noPort.Schedule(ds, &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(src, 1)}) {
			t.Fatal("source port changed the pick without mh-port")
		}
		x := port.Schedule(ds, p)
		if x != port.Schedule(ds, p) {
			t.Fatal("mh-port pick not stable")
		}
		seen[x] = true
		// ICMP has no ports: port 0 either way.
		p.Proto = 1
		if port.Schedule(ds, p) != noPort.Schedule(ds, p) {
			t.Fatal("mh-port used a port for ICMP")
		}
	}
	if len(seen) != len(ds) {
		t.Fatalf("mh-port spread one source over %d of %d dests", len(seen), len(ds))
	}

	p := &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(src, 1)}
	home := noPort.Schedule(ds, p)
	fb := newSched(t, "mh", FlagSHFallback)
	fb.Update(ds)
	ds[home].Flags |= DestOverload
	if got := noPort.Schedule(ds, p); got != -1 {
		t.Fatalf("overloaded home without fallback: %d", got)
	}
	alt := fb.Schedule(ds, p)
	if alt < 0 || alt == home {
		t.Fatalf("fallback picked %d (home %d)", alt, home)
	}
	for i := range ds {
		ds[i].Flags |= DestOverload
	}
	if got := fb.Schedule(ds, p); got != -1 {
		t.Fatalf("all overloaded, fallback picked %d", got)
	}
}
