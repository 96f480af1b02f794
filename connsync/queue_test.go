package connsync

import (
	"runtime"
	"sync"
	"testing"
)

func TestQueueCapacity(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {1024, 1024}} {
		if got := NewQueue(tc.in).Cap(); got != tc.want {
			t.Errorf("NewQueue(%d).Cap() = %d, want %d", tc.in, got, tc.want)
		}
	}
	for _, bad := range []int{0, -1, 1<<30 + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewQueue(%d) did not panic", bad)
				}
			}()
			NewQueue(bad)
		}()
	}
}

func TestQueueFullAndWrap(t *testing.T) {
	q := NewQueue(4)
	dst := make([]Record, 3)
	next, want := 0, 0
	for round := range 10 {
		for q.Len() < q.Cap() {
			r := rec(next)
			if !q.Push(&r) {
				t.Fatalf("round %d: Push refused with Len %d", round, q.Len())
			}
			next++
		}
		r := rec(-1)
		if q.Push(&r) {
			t.Fatal("Push accepted a record into a full queue")
		}
		n := q.Pop(dst[:1+round%3])
		for i := range n {
			if dst[i] != rec(want) {
				t.Fatalf("round %d: popped %+v, want record %d", round, dst[i], want)
			}
			want++
		}
	}
	if got := q.Dropped(); got != 10 {
		t.Fatalf("Dropped() = %d, want 10", got)
	}
	for n := q.Pop(dst); n > 0; n = q.Pop(dst) {
		for i := range n {
			if dst[i] != rec(want) {
				t.Fatalf("popped %+v, want record %d", dst[i], want)
			}
			want++
		}
	}
	if want != next || q.Len() != 0 {
		t.Fatalf("popped %d of %d, Len %d", want, next, q.Len())
	}
	if q.Pop(dst) != 0 || q.Pop(nil) != 0 {
		t.Fatal("Pop from an empty queue returned records")
	}
}

// TestQueueSPSC runs one producer and one consumer goroutine against a
// small queue, so the ring wraps often and both sides hit full and empty;
// under -race it also checks that the atomics order the slot copies.
func TestQueueSPSC(t *testing.T) {
	const total = 200_000
	q := NewQueue(64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; {
			r := Record{Timeout: uint32(i), CPort: uint16(i)}
			if q.Push(&r) {
				i++
			} else {
				runtime.Gosched() // with GOMAXPROCS=1 the consumer needs the CPU
			}
		}
	}()
	dst := make([]Record, 48)
	for next := 0; next < total; {
		n := q.Pop(dst)
		if n == 0 {
			runtime.Gosched()
		}
		for i := range n {
			if dst[i].Timeout != uint32(next) || dst[i].CPort != uint16(next) {
				t.Fatalf("popped %+v, want record %d", dst[i], next)
			}
			next++
		}
	}
	wg.Wait()
	// The consumer popped all total records in order, so every push
	// landed; nothing may be left behind.
	if q.Len() != 0 {
		t.Fatalf("Len %d after every record was popped", q.Len())
	}
}

func TestQueuePushAllocs(t *testing.T) {
	q := NewQueue(8)
	r := rec(1)
	dst := make([]Record, 8)
	if a := testing.AllocsPerRun(1000, func() {
		q.Push(&r)
		q.Push(&r)
		q.Pop(dst[:1])
	}); a != 0 {
		t.Fatalf("Push/Pop: %v allocs, want 0", a)
	}
}

// BenchmarkQueue measures a producer and a consumer on separate
// goroutines, the way a worker and the Sender use a queue.
func BenchmarkQueue(b *testing.B) {
	q := NewQueue(4096)
	done := make(chan struct{})
	go func() {
		dst := make([]Record, 256)
		for {
			select {
			case <-done:
				return
			default:
				if q.Pop(dst) == 0 {
					runtime.Gosched()
				}
			}
		}
	}()
	r := rec(1)
	b.ReportAllocs()
	for b.Loop() {
		for !q.Push(&r) {
			runtime.Gosched()
		}
	}
	close(done)
}

func BenchmarkQueuePushPop(b *testing.B) {
	q := NewQueue(4096)
	r := rec(1)
	dst := make([]Record, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		q.Push(&r)
		if i%64 == 63 {
			q.Pop(dst)
		}
	}
}
