package conntrack

import (
	"math"
	"runtime"
	"runtime/metrics"
	"testing"
)

// TestMillionConnections: a table of 1<<20 live connections costs at most
// 128 bytes each (heap growth: entries and index), and garbage
// collections with it in place pause for under 1 ms at the 99th
// percentile (runtime/metrics' /gc/pauses:seconds), as the table holds no
// pointers for the collector to scan.
func TestMillionConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 128 MiB")
	}
	const n = 1 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tb := New(n, 1)
	for i := uint32(0); i < n; i++ {
		c := conn(i)
		if _, err := tb.Insert(&c); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perConn := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d connections: %.1f bytes each (heap growth)", n, perConn)
	if perConn > 128 {
		t.Errorf("%.1f bytes per connection, want <= 128", perConn)
	}

	samples := []metrics.Sample{{Name: "/gc/pauses:seconds"}}
	metrics.Read(samples)
	h0 := samples[0].Value.Float64Histogram()
	counts0 := append([]uint64(nil), h0.Counts...)
	for range 20 {
		runtime.GC()
	}
	metrics.Read(samples)
	h := samples[0].Value.Float64Histogram()
	var total uint64
	delta := make([]uint64, len(h.Counts))
	for i := range h.Counts {
		delta[i] = h.Counts[i] - counts0[i]
		total += delta[i]
	}
	// The 99th percentile's bucket upper bound.
	var seen uint64
	p99 := math.Inf(1)
	for i, c := range delta {
		seen += c
		if float64(seen) >= 0.99*float64(total) {
			p99 = h.Buckets[i+1]
			break
		}
	}
	t.Logf("GC pauses with %d connections: %d pauses, p99 <= %.1f µs", n, total, p99*1e6)
	if p99 > 1e-3 {
		t.Errorf("GC pause p99 %.3f ms with a million connections, want < 1 ms", p99*1e3)
	}
	runtime.KeepAlive(tb)
}
