package connsync

import (
	"fmt"
	"math/bits"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// Queue is a bounded single-producer, single-consumer ring of Records: one
// packet-processing worker pushes, the Sender pops. The ring is a flat
// array of pointer-free records indexed by two free-running counters, so
// Push is a copy and two atomic operations and never allocates or blocks.
//
// Each side keeps a cached copy of the other side's counter and reloads it
// only when the cache says the ring is full (producer) or empty
// (consumer), so in steady state neither touches the other's cache line.
type Queue struct {
	buf  []Record
	mask uint64
	_    cpu.CacheLinePad

	// Consumer side.
	head      atomic.Uint64 // next slot to pop
	tailCache uint64        // the consumer's last look at tail
	_         cpu.CacheLinePad

	// Producer side.
	tail      atomic.Uint64 // next slot to fill
	headCache uint64        // the producer's last look at head
	drops     atomic.Uint64 // records refused because the ring was full
	_         cpu.CacheLinePad
}

// NewQueue returns an empty queue holding capacity records, rounded up to
// a power of two so a slot index is a mask rather than a division.
func NewQueue(capacity int) *Queue {
	if capacity < 1 || capacity > 1<<30 {
		panic(fmt.Sprintf("connsync: queue capacity got %d, want 1..2^30", capacity))
	}
	n := 1 << bits.Len(uint(capacity-1))
	return &Queue{buf: make([]Record, n), mask: uint64(n - 1)}
}

// Cap returns the number of records the queue holds when full.
func (q *Queue) Cap() int { return len(q.buf) }

// Len returns the number of queued records. It is exact only on the
// producer or consumer goroutine while the other side is idle.
func (q *Queue) Len() int {
	h := q.head.Load() // before tail: head never passes the tail read after it
	return int(q.tail.Load() - h)
}

// Dropped returns how many records Push refused because the queue was full.
func (q *Queue) Dropped() uint64 { return q.drops.Load() }

// Push copies r into the queue and reports whether there was room. A
// full queue means the Sender cannot keep up (a connection storm beyond
// the sync rate budget): the record is dropped and counted, and the worker
// moves on. Only the producer goroutine may call Push.
func (q *Queue) Push(r *Record) bool {
	t := q.tail.Load()
	if t-q.headCache > q.mask {
		q.headCache = q.head.Load()
		if t-q.headCache > q.mask {
			q.drops.Store(q.drops.Load() + 1) // single writer: no locked add needed
			return false
		}
	}
	q.buf[t&q.mask] = *r
	q.tail.Store(t + 1) // publishes the slot to the consumer
	return true
}

// Pop moves up to len(dst) records, oldest first, into dst and returns
// how many. Only the consumer goroutine may call Pop.
func (q *Queue) Pop(dst []Record) int {
	h := q.head.Load()
	avail := q.tailCache - h
	if avail < uint64(len(dst)) {
		q.tailCache = q.tail.Load()
		avail = q.tailCache - h
	}
	n := min(avail, uint64(len(dst)))
	if n == 0 {
		return 0
	}
	i := h & q.mask
	first := min(n, uint64(len(q.buf))-i)
	copy(dst, q.buf[i:i+first])
	copy(dst[first:n], q.buf[:n-first])
	q.head.Store(h + n) // hands the slots back to the producer
	return int(n)
}
