package conntrack

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func tup(i uint32, reply bool) Tuple {
	t := Tuple{Src: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, Dst: [4]byte{198, 18, 0, 100}, SPort: uint16(i), DPort: 80, Proto: 6}
	if reply {
		t = Tuple{Src: [4]byte{198, 19, 0, byte(i % 7)}, Dst: t.Src, SPort: 8080, DPort: t.SPort, Proto: 6}
	}
	return t
}

func conn(i uint32) Conn { return Conn{Orig: tup(i, false), Reply: tup(i, true), Dest: i} }

func TestInsertLookupDelete(t *testing.T) {
	tb := New(4, 1)
	c := conn(1)
	id, err := tb.Insert(&c)
	if err != nil {
		t.Fatal(err)
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
	if _, err := tb.Insert(&c); err != ErrExists {
		t.Fatalf("second insert: %v, want ErrExists", err)
	}
	clash := conn(2)
	clash.Reply = c.Reply
	if _, err := tb.Insert(&clash); err != ErrExists {
		t.Fatalf("reply clash: %v, want ErrExists", err)
	}
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
	tb.Delete(id)
	if _, _, ok := tb.Lookup(&c.Orig); ok {
		t.Fatal("found after delete")
	}
	if _, err := tb.Insert(&c5); err != nil {
		t.Fatalf("insert after delete: %v", err)
	}
	if tb.Len() != 4 {
		t.Fatalf("Len %d, want 4", tb.Len())
	}
}

// TestModel runs random operations against a map and checks the table
// agrees after each one; small tables force long probe runs, wrap-around
// and backward shifts.
func TestModel(t *testing.T) {
	for _, capacity := range []int{3, 64, 1000} {
		r := rand.New(rand.NewPCG(uint64(capacity), 9))
		tb := New(capacity, r.Uint64())
		model := map[uint32]uint32{} // key i -> id
		for op := 0; op < 200000; op++ {
			i := uint32(r.IntN(capacity * 2))
			switch r.IntN(3) {
			case 0:
				c := conn(i)
				id, err := tb.Insert(&c)
				_, present := model[i]
				switch {
				case present && err != ErrExists:
					t.Fatalf("op %d: insert of present %d: %v", op, i, err)
				case !present && len(model) == capacity && err != ErrFull:
					t.Fatalf("op %d: insert into full: %v", op, err)
				case !present && len(model) < capacity:
					if err != nil {
						t.Fatalf("op %d: insert %d: %v", op, i, err)
					}
					model[i] = id
				}
			case 1:
				if id, ok := model[i]; ok {
					tb.Delete(id)
					delete(model, i)
				}
			case 2:
				for _, reply := range []bool{false, true} {
					k := tup(i, reply)
					id, dir, ok := tb.Lookup(&k)
					want, present := model[i]
					if ok != present || (ok && (id != want || (dir == DirReply) != reply)) {
						t.Fatalf("op %d: lookup %d reply=%v: %d %v %v, model %d %v", op, i, reply, id, dir, ok, want, present)
					}
				}
			}
			if tb.Len() != len(model) {
				t.Fatalf("op %d: Len %d, model %d", op, tb.Len(), len(model))
			}
		}
	}
}

func TestReap(t *testing.T) {
	tb := New(100, 3)
	for i := uint32(0); i < 100; i++ {
		c := conn(i)
		c.Expires = int64(i % 2) // even: expired at now=1
		c.Expires *= 10
		if _, err := tb.Insert(&c); err != nil {
			t.Fatal(err)
		}
	}
	var seen int
	for k := 0; k < 10; k++ {
		tb.Reap(1, 10, func(_ uint32, c *Conn) {
			if c.Dest%2 != 0 {
				t.Fatalf("reaped live connection %d", c.Dest)
			}
			seen++
		})
	}
	if seen != 50 || tb.Len() != 50 {
		t.Fatalf("reaped %d, %d left; want 50 and 50", seen, tb.Len())
	}
}

func TestTemplateOutlivesControlled(t *testing.T) {
	tb := New(10, 4)
	tpl := conn(1)
	tpl.Flags = FlagTemplate
	tpl.Timeout = 100
	tid, _ := tb.Insert(&tpl)
	c := conn(2)
	c.Control = tid + 1
	c.Expires = 50
	tb.Insert(&c)
	tb.Get(tid).NControl = 1
	tb.Reap(10, 10, nil) // template expired (Expires 0) but controls c: re-armed
	if tb.Len() != 2 || tb.Get(tid).Expires != 110 {
		t.Fatalf("template not re-armed: len %d expires %d", tb.Len(), tb.Get(tid).Expires)
	}
	tb.Reap(60, 10, nil) // c expires, releases the template
	if tb.Len() != 1 || tb.Get(tid).NControl != 0 {
		t.Fatalf("after c expired: len %d ncontrol %d", tb.Len(), tb.Get(tid).NControl)
	}
	tb.Reap(200, 10, nil)
	if tb.Len() != 0 {
		t.Fatalf("template outlived its timeout")
	}
}

// TestStateTable walks IPVS's TCP state table for the usual lives of a
// connection.
func TestStateTable(t *testing.T) {
	type step struct {
		dir   PacketDir
		flags uint8
		want  State
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"NAT handshake and close by client", []step{
			{Input, flagSyn, StateSynRecv}, {Output, flagSyn | flagAck, StateSynRecv}, {Input, flagAck, StateEstablished},
			{Input, flagFin | flagAck, StateCloseWait}, {Output, flagAck, StateCloseWait}, {Output, flagFin | flagAck, StateTimeWait},
			{Input, flagAck, StateTimeWait}}},
		{"server closes first", []step{
			{Input, flagSyn, StateSynRecv}, {Input, flagAck, StateEstablished},
			{Output, flagFin | flagAck, StateFinWait}, {Input, flagFin | flagAck, StateTimeWait}}},
		{"reset", []step{{Input, flagSyn, StateSynRecv}, {Output, flagRst, StateClose}}},
		{"DR input only", []step{
			{InputOnly, flagSyn, StateSynRecv}, {InputOnly, flagAck, StateEstablished},
			{InputOnly, flagFin | flagAck, StateFinWait}, {InputOnly, flagAck, StateFinWait}}},
		{"no flags keeps state", []step{{Input, flagSyn, StateSynRecv}, {Input, 0, StateSynRecv}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StateNone
			for i, st := range tc.steps {
				s = TCPNext(s, st.dir, st.flags)
				if s != st.want {
					t.Fatalf("step %d: %v", i, s)
				}
			}
		})
	}
}

func TestActiveCounting(t *testing.T) {
	to := DefaultTimeouts()
	c := Conn{Orig: Tuple{Proto: 6}}
	c.Init(0, &to)
	if !c.Inactive() || c.State != StateNone {
		t.Fatal("new connection must start inactive (IP_VS_CONN_F_INACTIVE)")
	}
	if was, is := c.Advance(Input, flagSyn, 0, &to); was || is {
		t.Fatalf("SYN: %v %v", was, is)
	}
	if was, is := c.Advance(Input, flagAck, 0, &to); was || !is || c.Expires != 900*second {
		t.Fatalf("ACK: %v %v expires %d", was, is, c.Expires)
	}
	if was, is := c.Advance(Input, flagFin|flagAck, 5, &to); !was || is || c.Expires != 5+60*second {
		t.Fatalf("FIN: %v %v expires %d", was, is, c.Expires)
	}
	u := Conn{Orig: Tuple{Proto: 17}}
	u.Init(0, &to)
	if was, is := u.Advance(Input, 0, 7, &to); was || is || u.State != StateUDP || u.Expires != 7+300*second {
		t.Fatalf("UDP stays inactive: %v %v %v", was, is, u.State)
	}
	to.SetIPVSADM(10, 20, 30)
	if a, b, c := to.IPVSADM(); a != 10 || b != 20 || c != 30 {
		t.Fatalf("--set round trip: %d %d %d", a, b, c)
	}
}

// TestNoPointers keeps the table invisible to the garbage collector.
func TestNoPointers(t *testing.T) {
	var walk func(reflect.Type) bool
	walk = func(ty reflect.Type) bool {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.String, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return false
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				if !walk(ty.Field(i).Type) {
					t.Errorf("%s.%s holds a pointer", ty.Name(), ty.Field(i).Name)
					return false
				}
			}
		case reflect.Array:
			return walk(ty.Elem())
		}
		return true
	}
	walk(reflect.TypeOf(Conn{}))
	walk(reflect.TypeOf(slot{}))
}

func TestZeroAllocs(t *testing.T) {
	tb := New(1024, 5)
	to := DefaultTimeouts()
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		c := conn(i)
		id, _ := tb.Insert(&c)
		k := c.Reply
		tb.Lookup(&k)
		tb.Get(id).Advance(Output, flagAck, 1, &to)
		tb.Delete(id)
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per insert/lookup/advance/delete", allocs)
	}
}

func BenchmarkLookupHit1M(b *testing.B) {
	const n = 1 << 20
	tb := New(n, 6)
	for i := uint32(0); i < n; i++ {
		c := conn(i)
		c.Reply.Src[2] = byte(i >> 16)
		c.Reply.SPort = uint16(i >> 4)
		if _, err := tb.Insert(&c); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]Tuple, 4096)
	for i := range keys {
		keys[i] = tup(uint32(i*251)%n, false)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := tb.Lookup(&keys[i&4095]); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkInsertDelete(b *testing.B) {
	tb := New(1<<16, 7)
	for i := uint32(0); i < 1<<15; i++ {
		c := conn(i)
		tb.Insert(&c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := conn(uint32(1<<15 + i%(1<<14)))
		id, err := tb.Insert(&c)
		if err != nil {
			b.Fatal(err)
		}
		tb.Delete(id)
	}
}
