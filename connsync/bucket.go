package connsync

import (
	"sync"
	"time"
)

// bucket is a token bucket of bytes, shared by the Sender's periodic flush
// and a concurrent bulk dump so that together they stay within the rate.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst int, now time.Time) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// grant takes as many bytes as are available up to want, or nothing when
// fewer than least are, and returns how many it took.
func (b *bucket) grant(least, want int, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens < float64(least) {
		return 0
	}
	n := min(want, int(b.tokens))
	b.tokens -= float64(n)
	return n
}

// refund returns unused bytes from a grant.
func (b *bucket) refund(n int) {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+float64(n))
	b.mu.Unlock()
}

// take takes n bytes and returns 0, or takes nothing and returns how long
// until n bytes will have accumulated. n must not exceed the burst.
func (b *bucket) take(n int, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if short := float64(n) - b.tokens; short > 0 {
		return max(time.Duration(short/b.rate*float64(time.Second)), time.Microsecond)
	}
	b.tokens -= float64(n)
	return 0
}
