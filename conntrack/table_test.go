package conntrack

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"
)

// tup returns key i's original tuple (client 10.x.y.z:i → VIP:80) or its
// reply tuple (real server → client). Distinct keys below 2^24 have
// distinct tuples.
func tup(i uint32, reply bool) Tuple {
	orig := Tuple{Src: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, Dst: [4]byte{198, 18, 0, 100}, SPort: uint16(i) | 1024, DPort: 80, Proto: 6}
	if !reply {
		return orig
	}
	return Tuple{Src: [4]byte{198, 19, 0, byte(i % 7)}, Dst: orig.Src, SPort: 8080, DPort: orig.SPort, Proto: 6}
}

func conn(i uint32) Conn { return Conn{Orig: tup(i, false), Reply: tup(i, true), Dest: i} }

// verify checks the table's invariants: each slot reachable from its
// home without crossing an empty slot (what backward-shift deletion must
// keep), each slot's tag the hash of the tuple it names, two slots per
// live entry naming it, and the free list holding exactly the rest.
func (t *Table) verify() error {
	seen := make([]uint8, len(t.conns))
	used := 0
	for i, s := range t.slots {
		if s.ref == 0 {
			continue
		}
		used++
		id := s.ref&^dirBit - 1
		if int(id) >= len(t.conns) || t.conns[id].next != live {
			return fmt.Errorf("slot %d names dead entry %d", i, id)
		}
		if h := t.hash(t.key(s.ref)); h != s.tag {
			return fmt.Errorf("slot %d: tag %#x, hash %#x", i, s.tag, h)
		}
		seen[id] |= 1 << (s.ref >> 31)
		for j := s.tag & t.mask; j != uint32(i); j = (j + 1) & t.mask {
			if t.slots[j].ref == 0 {
				return fmt.Errorf("slot %d unreachable: empty slot %d after home %d", i, j, s.tag&t.mask)
			}
		}
	}
	if used != 2*t.n {
		return fmt.Errorf("%d slots used for %d entries", used, t.n)
	}
	if used*2 > len(t.slots) {
		return fmt.Errorf("load %d/%d above 0.5", used, len(t.slots))
	}
	liveN := 0
	for id := range t.conns {
		if t.conns[id].next == live {
			liveN++
			if seen[id] != 3 {
				return fmt.Errorf("entry %d indexed %b", id, seen[id])
			}
		}
	}
	free := 0
	for f := t.free; f != 0; f = t.conns[f-1].next {
		if free++; free > len(t.conns) || t.conns[f-1].next == live {
			return fmt.Errorf("free list corrupt at %d", f-1)
		}
	}
	if liveN != t.n || free+t.n != len(t.conns) {
		return fmt.Errorf("Len %d, %d live, %d free, cap %d", t.n, liveN, free, len(t.conns))
	}
	return nil
}

func mustVerify(t testing.TB, tb *Table) {
	t.Helper()
	if err := tb.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestInsertLookupDelete(t *testing.T) {
	tb := New(4, 1)
	c := conn(1)
	c.Svc, c.Fwd, c.ClientIf, c.DestMAC = 7, 2, 3, [6]byte{1, 2, 3, 4, 5, 6}
	id, err := tb.Insert(&c)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Get(id); got.Svc != 7 || got.Fwd != 2 || got.ClientIf != 3 || got.DestMAC != c.DestMAC || got.Orig != c.Orig {
		t.Fatalf("Get(%d) = %+v", id, *got)
	}
	for _, tc := range []struct {
		k   Tuple
		dir Dir
	}{{c.Orig, DirOrig}, {c.Reply, DirReply}} {
		got, dir, ok := tb.Lookup(&tc.k)
		if !ok || got != id || dir != tc.dir {
			t.Fatalf("Lookup(%v) = %d %v %v, want %d %v", tc.k, got, dir, ok, id, tc.dir)
		}
	}
	for _, k := range []Tuple{tup(2, false), tup(2, true), {}, {Src: c.Orig.Src, Dst: c.Orig.Dst, SPort: c.Orig.SPort, DPort: c.Orig.DPort, Proto: 17}} {
		if _, _, ok := tb.Lookup(&k); ok {
			t.Fatalf("Lookup(%v) found a connection", k)
		}
	}

	clash := func(mod func(*Conn)) Conn { x := conn(2); mod(&x); return x }
	for _, tc := range []struct {
		name string
		c    Conn
		want error
	}{
		{"same connection", c, ErrExists},
		{"orig clash", clash(func(x *Conn) { x.Orig = c.Orig }), ErrExists},
		{"reply clash", clash(func(x *Conn) { x.Reply = c.Reply }), ErrExists},
		{"orig is another's reply", clash(func(x *Conn) { x.Orig = c.Reply }), ErrExists},
		{"reply is another's orig", clash(func(x *Conn) { x.Reply = c.Orig }), ErrExists},
		{"orig equals reply", clash(func(x *Conn) { x.Reply = x.Orig }), ErrExists},
	} {
		if _, err := tb.Insert(&tc.c); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	mustVerify(t, tb)
	for i := uint32(2); i <= 4; i++ {
		ci := conn(i)
		if _, err := tb.Insert(&ci); err != nil {
			t.Fatal(err)
		}
	}
	c5 := conn(5)
	if _, err := tb.Insert(&c5); err != ErrFull {
		t.Fatalf("insert into full table: %v, want ErrFull", err)
	}
	if _, err := tb.Insert(&c); err != ErrExists {
		t.Fatalf("insert of a tracked tuple into a full table: %v, want ErrExists", err)
	}
	if tb.Len() != 4 || tb.Cap() != 4 {
		t.Fatalf("Len %d Cap %d, want 4 4", tb.Len(), tb.Cap())
	}
	mustVerify(t, tb)
	tb.Delete(id)
	tb.Delete(id) // no-op
	if tb.Live(id) || tb.Len() != 3 {
		t.Fatalf("after delete: live %v len %d", tb.Live(id), tb.Len())
	}
	for _, k := range []Tuple{c.Orig, c.Reply} {
		if _, _, ok := tb.Lookup(&k); ok {
			t.Fatalf("found %v after delete", k)
		}
	}
	id5, err := tb.Insert(&c5)
	if err != nil {
		t.Fatalf("insert after delete: %v", err)
	}
	if id5 != id {
		t.Errorf("freed ID %d not reused (got %d)", id, id5)
	}
	mustVerify(t, tb)
}

// TestBackwardShiftWrap packs entries whose tuples all hash home to the
// last two slots, so probe runs wrap around the end of the index, and
// deletes them in every order, checking the index after each delete.
func TestBackwardShiftWrap(t *testing.T) {
	const capacity = 4 // 16 slots
	probe := New(capacity, 42)
	var keys []uint32
	for i := uint32(0); len(keys) < capacity; i++ {
		o, r := tup(i, false), tup(i, true)
		if probe.hash(&o)&probe.mask >= 14 && probe.hash(&r)&probe.mask >= 14 {
			keys = append(keys, i)
		}
	}
	var perms [][]int
	var permute func(p []int, k int)
	permute = func(p []int, k int) {
		if k == len(p) {
			perms = append(perms, append([]int(nil), p...))
			return
		}
		for i := k; i < len(p); i++ {
			p[k], p[i] = p[i], p[k]
			permute(p, k+1)
			p[k], p[i] = p[i], p[k]
		}
	}
	permute([]int{0, 1, 2, 3}, 0)
	for _, order := range perms {
		tb := New(capacity, 42)
		ids := make([]uint32, len(keys))
		for i, k := range keys {
			c := conn(k)
			var err error
			if ids[i], err = tb.Insert(&c); err != nil {
				t.Fatal(err)
			}
		}
		wrapped := false
		for i := 0; i < 4; i++ {
			wrapped = wrapped || tb.slots[i].ref != 0
		}
		if !wrapped {
			t.Fatal("probe runs did not wrap")
		}
		mustVerify(t, tb)
		for n, o := range order {
			tb.Delete(ids[o])
			mustVerify(t, tb)
			for _, rest := range order[n+1:] {
				for _, reply := range []bool{false, true} {
					k := tup(keys[rest], reply)
					if id, dir, ok := tb.Lookup(&k); !ok || id != ids[rest] || (dir == DirReply) != reply {
						t.Fatalf("order %v after %d deletes: lost key %d reply=%v", order, n+1, keys[rest], reply)
					}
				}
			}
		}
	}
}

// TestModel runs random inserts, deletes, lookups and reaps against a
// map and checks that the table agrees after each; every so often it
// checks the index invariants. Small tables make long probe runs,
// wrap-around and many backward shifts.
func TestModel(t *testing.T) {
	type entry struct {
		id      uint32
		expires int64
	}
	ops := 1_000_000
	if testing.Short() {
		ops = 100_000
	}
	for _, capacity := range []int{1, 3, 64, 1000, 20000} {
		r := rand.New(rand.NewPCG(uint64(capacity), 9))
		tb := New(capacity, r.Uint64())
		model := map[uint32]entry{}
		byID := map[uint32]uint32{}
		now := int64(0)
		keys := uint32(capacity*2 + 2)
		for op := range ops {
			i := r.Uint32N(keys)
			switch x := r.IntN(100); {
			case x < 35:
				c := conn(i)
				c.Expires = now + r.Int64N(100)
				id, err := tb.Insert(&c)
				_, present := model[i]
				switch {
				case present:
					if err != ErrExists {
						t.Fatalf("op %d: insert of present %d: %v", op, i, err)
					}
				case len(model) == capacity:
					if err != ErrFull {
						t.Fatalf("op %d: insert into full table: %v", op, err)
					}
				case err != nil:
					t.Fatalf("op %d: insert %d: %v", op, i, err)
				default:
					if _, dup := byID[id]; dup {
						t.Fatalf("op %d: ID %d handed out twice", op, id)
					}
					model[i] = entry{id, c.Expires}
					byID[id] = i
				}
			case x < 60:
				if e, ok := model[i]; ok {
					tb.Delete(e.id)
					delete(model, i)
					delete(byID, e.id)
				}
			case x < 95:
				for _, reply := range []bool{false, true} {
					k := tup(i, reply)
					id, dir, ok := tb.Lookup(&k)
					e, present := model[i]
					if ok != present || (ok && (id != e.id || (dir == DirReply) != reply)) {
						t.Fatalf("op %d: lookup %d reply=%v: %d %v %v, model %+v %v", op, i, reply, id, dir, ok, e, present)
					}
				}
			default:
				now += r.Int64N(20)
				budget := 1 + r.IntN(capacity)
				tb.Reap(now, budget, func(id uint32, c *Conn) {
					k, ok := byID[id]
					if !ok || model[k].expires != c.Expires || c.Expires > now {
						t.Fatalf("op %d: reaped %d (key %d, %v) expires %d at %d", op, id, k, ok, c.Expires, now)
					}
					delete(model, k)
					delete(byID, id)
				})
			}
			if tb.Len() != len(model) {
				t.Fatalf("op %d: Len %d, model %d", op, tb.Len(), len(model))
			}
			if op%(ops/50) == 0 {
				mustVerify(t, tb)
			}
		}
		mustVerify(t, tb)
	}
}

// TestReap checks that the reaper removes exactly the expired entries,
// all of them within ⌈Cap/budget⌉ calls, calling back on each before it
// goes.
func TestReap(t *testing.T) {
	for _, tc := range []struct{ capacity, fill, budget int }{
		{100, 100, 10}, {100, 37, 7}, {1000, 999, 1000}, {5, 5, 1}, {64, 10, 5000},
	} {
		t.Run(fmt.Sprintf("cap%d_fill%d_budget%d", tc.capacity, tc.fill, tc.budget), func(t *testing.T) {
			tb := New(tc.capacity, 3)
			r := rand.New(rand.NewPCG(1, 2))
			expired := map[uint32]bool{}
			for i := range tc.fill {
				c := conn(uint32(i))
				c.Expires = r.Int64N(200)
				id, err := tb.Insert(&c)
				if err != nil {
					t.Fatal(err)
				}
				expired[id] = c.Expires <= 100
			}
			// Move the cursor off zero so the sweep wraps.
			tb.Reap(0, tc.capacity/3, nil)
			calls := (tc.capacity + tc.budget - 1) / tc.budget
			got := 0
			for range calls {
				got += tb.Reap(100, tc.budget, func(id uint32, c *Conn) {
					if !expired[id] || !tb.Live(id) || c.Expires > 100 {
						t.Fatalf("reaped %d expiring at %d", id, c.Expires)
					}
					delete(expired, id)
				})
			}
			for id, exp := range expired {
				if exp {
					t.Errorf("expired entry %d left after %d calls", id, calls)
				} else if !tb.Live(id) {
					t.Errorf("live entry %d gone", id)
				}
			}
			if tb.Len() != len(expired) || got != tc.fill-len(expired) {
				t.Fatalf("Len %d, %d reaped, %d should remain", tb.Len(), got, len(expired))
			}
			mustVerify(t, tb)
		})
	}
}

// TestTemplate: a template outlives its timer while it controls
// connections (ip_vs_conn_expire re-arms it), is released when they go,
// and a stale binding to a deleted template's reused ID touches nothing.
func TestTemplate(t *testing.T) {
	tb := New(10, 4)
	tpl := conn(1)
	tpl.Flags = FlagTemplate
	tpl.TimeoutSec = 100
	tid, _ := tb.Insert(&tpl)
	c := conn(2)
	c.Expires = 50
	cid, _ := tb.Insert(&c)
	tb.Bind(cid, tid)
	if p := tb.Get(tid); p.NControl != 1 || tb.Get(cid).Control != tid+1 {
		t.Fatalf("Bind: ncontrol %d control %d", p.NControl, tb.Get(cid).Control)
	}
	tb.Reap(10, 10, nil) // template expired (Expires 0) but controls c
	if tb.Len() != 2 || tb.Get(tid).Expires != 10+100*1_000_000_000 {
		t.Fatalf("template not re-armed: len %d expires %d", tb.Len(), tb.Get(tid).Expires)
	}
	tb.Reap(60, 10, nil) // c expires and releases the template
	if tb.Len() != 1 || tb.Get(tid).NControl != 0 {
		t.Fatalf("after c expired: len %d ncontrol %d", tb.Len(), tb.Get(tid).NControl)
	}
	tb.Reap(10+100*1_000_000_000, 10, nil)
	if tb.Len() != 0 {
		t.Fatal("template outlived its timeout")
	}

	// Deleted template, ID reused by another template: the old binding
	// must not decrement the newcomer.
	tid, _ = tb.Insert(&tpl)
	cid, _ = tb.Insert(&c)
	tb.Bind(cid, tid)
	tb.Delete(tid)
	tpl2 := conn(3)
	tpl2.Flags = FlagTemplate
	tid2, _ := tb.Insert(&tpl2)
	c3 := conn(4)
	c3id, _ := tb.Insert(&c3)
	tb.Bind(c3id, tid2)
	if tid2 != tid {
		t.Fatalf("test needs the ID reused: %d, %d", tid, tid2)
	}
	tb.Delete(cid)
	if n := tb.Get(tid2).NControl; n != 1 {
		t.Fatalf("stale binding changed the new template: ncontrol %d", n)
	}
	tb.Bind(c3id, tid2) // rebinding to the same template keeps the count
	if n := tb.Get(tid2).NControl; n != 1 {
		t.Fatalf("rebind: ncontrol %d", n)
	}
	tb.Delete(c3id)
	if n := tb.Get(tid2).NControl; n != 0 {
		t.Fatalf("delete did not release: ncontrol %d", n)
	}
	mustVerify(t, tb)
}

func TestSnapshot(t *testing.T) {
	tb := New(100, 5)
	var ids []uint32
	for i := uint32(0); i < 50; i++ {
		c := conn(i)
		id, _ := tb.Insert(&c)
		ids = append(ids, id)
	}
	for _, id := range ids[:10] {
		tb.Delete(id)
	}
	all := tb.AppendSnapshot(nil, 1000)
	if len(all) != 40 {
		t.Fatalf("snapshot of %d, want 40", len(all))
	}
	for i := range all {
		k := all[i].Orig
		id, _, ok := tb.Lookup(&k)
		if !ok {
			t.Fatalf("snapshot entry %d not in the table", i)
		}
		want := *tb.Get(id)
		want.next, want.gen, want.ctlGen = 0, 0, 0
		if all[i] != want {
			t.Fatalf("snapshot entry %d: %+v, want %+v", i, all[i], want)
		}
	}
	prefix := []Conn{{Svc: 99}}
	if got := tb.AppendSnapshot(prefix, 7); len(got) != 8 || got[0].Svc != 99 {
		t.Fatalf("AppendSnapshot(prefix, 7): %d entries", len(got))
	}
	var pieces []Conn
	pos := 0
	for pos < tb.Cap() {
		pieces, pos = tb.AppendSnapshotAt(pieces, pos, 13)
	}
	if !reflect.DeepEqual(pieces, all) {
		t.Fatal("snapshot in pieces differs from the whole")
	}
	n := 0
	tb.Range(func(id uint32, c *Conn) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("Range did not stop: %d", n)
	}
}

// TestNoPointers keeps the table's arrays invisible to the garbage
// collector: Conn and slot must hold no pointer, map, slice, string,
// interface, channel or function, however deeply nested.
func TestNoPointers(t *testing.T) {
	var walk func(path string, ty reflect.Type)
	walk = func(path string, ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
			reflect.Interface, reflect.Chan, reflect.Func:
			t.Errorf("%s is a %v", path, ty.Kind())
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(path+"."+ty.Field(i).Name, ty.Field(i).Type)
			}
		case reflect.Array:
			walk(path+"[]", ty.Elem())
		}
	}
	walk("Conn", reflect.TypeOf(Conn{}))
	walk("slot", reflect.TypeOf(slot{}))
	walk("Tuple", reflect.TypeOf(Tuple{}))
	if !reflect.TypeOf(Tuple{}).Comparable() {
		t.Error("Tuple is not comparable")
	}
	t.Logf("sizeof Tuple %d, Conn %d, slot %d", unsafe.Sizeof(Tuple{}), unsafe.Sizeof(Conn{}), unsafe.Sizeof(slot{}))
}

func TestZeroAllocs(t *testing.T) {
	tb := New(1024, 5)
	to := DefaultTimeouts()
	for i := uint32(0); i < 512; i++ {
		c := conn(i)
		tb.Insert(&c)
	}
	hit, miss := tup(100, true), tup(5000, false)
	c := conn(600)
	var id uint32
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Lookup hit", func() { tb.Lookup(&hit) }},
		{"Lookup miss", func() { tb.Lookup(&miss) }},
		{"Insert", func() { id, _ = tb.Insert(&c) }},
		{"Advance", func() { tb.Get(id).Advance(Output, flagAck, 1, &to) }},
		{"Delete", func() { tb.Delete(id); tb.Insert(&c) }},
		{"Reap", func() {
			id, _ = tb.Insert(&c)
			tb.Get(id).Expires = 0
			tb.Reap(1, tb.Cap(), func(uint32, *Conn) {})
		}},
	} {
		if allocs := testing.AllocsPerRun(1000, tc.fn); allocs != 0 {
			t.Errorf("%s: %v allocations", tc.name, allocs)
		}
	}
}

func fill(b *testing.B, n int) (*Table, []Tuple) {
	tb := New(n, 6)
	keys := make([]Tuple, 0, n)
	for i := uint32(0); i < uint32(n); i++ {
		c := conn(i)
		if _, err := tb.Insert(&c); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, c.Orig, c.Reply)
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return tb, keys
}

// BenchmarkLookupHit1M looks up random tuples (either side) of a table
// holding 1M connections (2M index keys, 4M slots): cache misses
// included, as on a busy director.
func BenchmarkLookupHit1M(b *testing.B) {
	tb, keys := fill(b, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := tb.Lookup(&keys[i&(len(keys)-1)]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLookupMiss1M(b *testing.B) {
	tb, _ := fill(b, 1<<20)
	keys := make([]Tuple, 1<<16)
	for i := range keys {
		keys[i] = tup(uint32(i), false)
		keys[i].DPort = 443
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := tb.Lookup(&keys[i&(len(keys)-1)]); ok {
			b.Fatal("hit")
		}
	}
}

// BenchmarkInsertDelete churns a half-full 1M table: insert a new
// connection, delete an old one.
func BenchmarkInsertDelete(b *testing.B) {
	const n = 1 << 20
	tb := New(n, 7)
	ring := make([]uint32, n/2)
	for i := range ring {
		c := conn(uint32(i))
		ring[i], _ = tb.Insert(&c)
	}
	conns := make([]Conn, n)
	for i := range conns {
		conns[i] = conn(uint32(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i & (len(ring) - 1)
		tb.Delete(ring[k])
		id, err := tb.Insert(&conns[(i+len(ring))&(n-1)])
		if err != nil {
			b.Fatal(err)
		}
		ring[k] = id
	}
}

func BenchmarkAdvance(b *testing.B) {
	to := DefaultTimeouts()
	c := conn(1)
	c.Init(0, &to)
	flags := [...]uint8{flagSyn, flagAck, flagAck | flagPsh, flagFin | flagAck}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Advance(PacketDir(i&1), flags[i&3], int64(i), &to)
	}
}

// BenchmarkReap reports the reaper's cost per entry scanned (ns/op is
// per entry) over a 1M table where one entry in eight has expired and is
// deleted, the rest re-inserted to keep the table full.
func BenchmarkReap(b *testing.B) {
	const n = 1 << 20
	tb := New(n, 8)
	for i := uint32(0); i < n; i++ {
		c := conn(i)
		c.Expires = int64(i%8) * 100
		tb.Insert(&c)
	}
	var dead []Conn
	now := int64(50)
	b.ReportAllocs()
	b.ResetTimer()
	for scanned := 0; scanned < b.N; {
		budget := min(4096, b.N-scanned)
		tb.Reap(now, budget, func(_ uint32, c *Conn) { dead = append(dead, *c) })
		scanned += budget
		if scanned%n == 0 {
			now += 100 // each sweep, the next eighth expires
		}
		b.StopTimer()
		for i := range dead {
			dead[i].Expires = now + 750
			tb.Insert(&dead[i])
		}
		dead = dead[:0]
		b.StartTimer()
	}
}

// TestProbeLengths guards the hash: with a full table (index load 0.5)
// of tuples that differ only in a few low bits, as a director's do
// (sequential client addresses and ports), the mean distance from a
// slot's home must stay near linear probing's 1.5 for random hashes.
func TestProbeLengths(t *testing.T) {
	for _, seed := range []uint64{0, 1, 0xdeadbeef} {
		tb := New(1<<16, seed)
		for i := uint32(0); i < 1<<16; i++ {
			c := conn(i)
			if _, err := tb.Insert(&c); err != nil {
				t.Fatal(err)
			}
		}
		total, longest := 0, 0
		for i, s := range tb.slots {
			if s.ref != 0 {
				d := int((uint32(i)-s.tag)&tb.mask) + 1
				total += d
				longest = max(longest, d)
			}
		}
		mean := float64(total) / float64(2*tb.Len())
		t.Logf("seed %#x: mean probe %.3f, longest %d", seed, mean, longest)
		if mean > 1.7 || longest > 64 {
			t.Errorf("seed %#x: mean probe %.3f, longest %d", seed, mean, longest)
		}
	}
}
