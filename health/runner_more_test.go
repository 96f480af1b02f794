package health

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunnerStateAndRestore(t *testing.T) {
	tm := fast
	tm.Retry = 2
	tm.DelayLoop = time.Hour
	tm.DelayBeforeRetry = time.Hour // the first check is the only one

	// A probe with both retries used goes down at its next failure.
	r := NewRunner(4, quiet())
	p := script(false)
	var rec recorder
	if err := r.Restore("rs", []Probe{p}, tm, State{Up: true, Weight: -1, Probes: []ProbeState{{Up: true, Fails: 2}}}, rec.onChange); err != nil {
		t.Fatal(err)
	}
	if st, ok := r.State("rs"); !ok || !st.Up || st.Probes[0].Fails != 2 {
		t.Fatalf("restored state %+v, %v", st, ok)
	}
	start(t, r)
	waitFor(t, "down", func() bool { return len(rec.changes()) > 0 })
	if n := p.calls.Load(); n != 1 {
		t.Errorf("down after %d checks, want 1", n)
	}
	if st, _ := r.State("rs"); st.Up || st.Probes[0].Up {
		t.Errorf("state after the failure %+v", st)
	}

	// A server restored down stays down without a report while it fails,
	// and comes back on its first success; its dynamic weight is kept.
	r2 := NewRunner(4, quiet())
	p2 := script(false, false, true)
	var rec2 recorder
	var upAt atomic.Int64
	onChange := func(up bool, w int32, reason string) {
		upAt.CompareAndSwap(0, p2.calls.Load())
		rec2.onChange(up, w, reason)
	}
	if err := r2.Restore("rs", []Probe{p2, script(true)}, fast, State{Weight: 5, Probes: []ProbeState{{Up: false}}}, onChange); err != nil {
		t.Fatal(err)
	}
	if up, _ := r2.Up("rs"); up {
		t.Fatal("restored down, reported up")
	}
	start(t, r2)
	waitFor(t, "back up", func() bool { return len(rec2.changes()) > 0 })
	if n := upAt.Load(); n != 3 {
		t.Errorf("up after %d checks, want 3", n)
	}
	if got, want := rec2.changes(), []change{{true, 5}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if _, ok := r2.State("nosuch"); ok {
		t.Error("State of an unknown key")
	}
}

// countingProbe wraps a probe and counts it on g.
type countingProbe struct {
	Probe
	g *gauge
}

func (c countingProbe) Check(ctx context.Context) Result {
	c.g.enter()
	defer c.g.leave()
	return c.Probe.Check(ctx)
}

// openFDs counts this process's open file descriptors.
func openFDs() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}

// TestRunnerThousandServers: a thousand real servers, each a TCP_CHECK
// of a listener on loopback, are checked with at most the configured
// number of probes in flight, and neither the goroutines nor the open
// sockets grow with the number of servers.
func TestRunnerThousandServers(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand listeners")
	}
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	const servers, limit = 1000, 16
	var lns []*net.TCPListener
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	for range servers {
		ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	// Connections wait in the listeners' backlogs, unaccepted: TCP_CHECK
	// closes them once connected. No goroutine serves the listeners.
	var g gauge
	r := NewRunner(limit, quiet())
	tm := Timing{DelayLoop: 100 * time.Millisecond, Retry: 1, DelayBeforeRetry: 10 * time.Millisecond,
		Warmup: 50 * time.Millisecond, StartUp: true}
	var downs atomic.Int64
	for i, ln := range lns {
		target := ln.Addr().(*net.TCPAddr).AddrPort()
		p := countingProbe{Probe: &TCPProbe{Target: netip.AddrPortFrom(target.Addr().Unmap(), target.Port()), Timeout: time.Second}, g: &g}
		if err := r.Add(fmt.Sprint("rs", i), []Probe{p}, tm, func(up bool, _ int32, _ string) {
			if !up {
				downs.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	baseG := runtime.NumGoroutine()
	baseFD, err := openFDs()
	if err != nil {
		t.Fatal(err)
	}

	// The sampler reads the counts every millisecond until stopped; it
	// reports what it saw, and the first error, once stop is closed.
	var peakG, peakFD int
	var sampleErr error
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			fd, err := openFDs()
			if err != nil && sampleErr == nil {
				sampleErr = err
			}
			peakG, peakFD = max(peakG, runtime.NumGoroutine()), max(peakFD, fd)
			time.Sleep(time.Millisecond)
		}
	}()
	start(t, r)
	waitFor(t, "every server checked three times", func() bool { return g.done.Load() >= 3*servers })
	close(stop)
	<-sampled
	if sampleErr != nil {
		t.Fatal(sampleErr)
	}

	if p := g.peak.Load(); p > limit {
		t.Errorf("%d probes in flight, limit %d", p, limit)
	} else if p < 2 {
		t.Errorf("peak %d in flight: probes do not run concurrently", p)
	}
	// The sampler and the Run loop, then one goroutine per probe in
	// flight, and a few for the runtime and the dialer's cancellation.
	if extra := peakG - baseG; extra > 2+2*limit+4 {
		t.Errorf("%d goroutines above the %d before the checks started, for %d probes at once", extra, baseG, limit)
	}
	// One socket per probe in flight, plus the sampler's /proc read.
	if extra := peakFD - baseFD; extra > limit+2 {
		t.Errorf("%d descriptors above the %d before the checks started, for %d probes at once", extra, baseFD, limit)
	}
	if n := downs.Load(); n != 0 {
		t.Errorf("%d servers went down", n)
	}
	t.Logf("peak in flight %d, goroutines +%d, descriptors +%d", g.peak.Load(), peakG-baseG, peakFD-baseFD)
}
