package conntrack

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

const gcEntries = 2 << 20

// BenchmarkGC2M measures what 2M live connections cost the garbage
// collector: each op is one forced, complete collection (runtime.GC).
// It reports the stop-the-world pause and the collector's CPU time per
// cycle, for the Table and, for contrast, for the same connections held
// as map[Tuple]*Conn. Numbers only: nothing is asserted.
//
//	go test -run '^$' -bench GC2M -benchtime 20x ./conntrack/
func BenchmarkGC2M(b *testing.B) {
	b.Run("table", func(b *testing.B) {
		tb := New(gcEntries, 1)
		for i := uint32(0); i < gcEntries; i++ {
			c := conn(i)
			if _, err := tb.Insert(&c); err != nil {
				b.Fatal(err)
			}
		}
		measureGC(b)
		runtime.KeepAlive(tb)
	})
	b.Run("map-of-pointers", func(b *testing.B) {
		m := make(map[Tuple]*Conn, gcEntries)
		for i := uint32(0); i < gcEntries; i++ {
			c := conn(i)
			m[c.Orig] = &c
		}
		measureGC(b)
		runtime.KeepAlive(m)
	})
}

func measureGC(b *testing.B) {
	samples := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	metrics.Read(samples)
	cpu0 := samples[0].Value.Float64()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.StopTimer()
	metrics.Read(samples)
	runtime.ReadMemStats(&after)
	n := float64(after.NumGC - before.NumGC)
	b.ReportMetric(float64(after.PauseTotalNs-before.PauseTotalNs)/n, "stw-ns/gc")
	b.ReportMetric((samples[0].Value.Float64()-cpu0)*1e6/n, "gc-cpu-µs/gc")
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
}
