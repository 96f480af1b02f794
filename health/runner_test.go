package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errFake = errors.New("fake failure")

// scripted returns its results in order, repeating the last one, and
// counts its calls.
type scripted struct {
	mu      sync.Mutex
	results []Result
	calls   atomic.Int64
}

func script(rs ...bool) *scripted {
	s := &scripted{}
	for _, up := range rs {
		r := Result{Up: up, Weight: -1}
		if !up {
			r.Err = errFake
		}
		s.results = append(s.results, r)
	}
	return s
}

func (s *scripted) Check(context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.calls.Add(1)
	return s.results[min(int(n-1), len(s.results)-1)]
}

type change struct {
	up     bool
	weight int32
}

// recorder collects callbacks.
type recorder struct {
	mu  sync.Mutex
	got []change
}

func (r *recorder) onChange(up bool, weight int32, _ string) {
	r.mu.Lock()
	r.got = append(r.got, change{up, weight})
	r.mu.Unlock()
}

func (r *recorder) changes() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.got...)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start runs r until the test ends.
func start(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var fast = Timing{DelayLoop: 20 * time.Millisecond, Retry: 1, DelayBeforeRetry: 5 * time.Millisecond, StartUp: true}

func TestRunnerRetryAbsorbsSingleFailures(t *testing.T) {
	r := NewRunner(4, quiet())
	p := script(true, false, true, false, true, false, true, false, true)
	var rec recorder
	if err := r.Add("rs", []Probe{p}, fast, rec.onChange); err != nil {
		t.Fatal(err)
	}
	start(t, r)
	waitFor(t, "12 checks", func() bool { return p.calls.Load() >= 12 })
	if got := rec.changes(); len(got) != 0 {
		t.Fatalf("changes = %v, want none: one failure is within retry 1", got)
	}
	if up, ok := r.Up("rs"); !up || !ok {
		t.Errorf("Up = %v, %v; want true, true", up, ok)
	}
}

func TestRunnerDownThenUp(t *testing.T) {
	r := NewRunner(4, quiet())
	// Up, then two failures (the try and its one retry): down. Two more
	// failures while down, then success: up, and it stays up.
	p := script(true, false, false, false, false, true)
	var rec recorder
	if err := r.Add("rs", []Probe{p}, fast, rec.onChange); err != nil {
		t.Fatal(err)
	}
	start(t, r)
	waitFor(t, "10 checks", func() bool { return p.calls.Load() >= 10 })
	want := []change{{false, -1}, {true, -1}}
	if got := rec.changes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
}

func TestRunnerRetryCount(t *testing.T) {
	// With retry 3, three failures in a row stay up; the fourth is down.
	r := NewRunner(4, quiet())
	p := script(false, false, false, true, false, false, false, false)
	var rec recorder
	tm := fast
	tm.Retry = 3
	r.Add("rs", []Probe{p}, tm, rec.onChange)
	start(t, r)
	waitFor(t, "a change", func() bool { return len(rec.changes()) > 0 })
	if n := p.calls.Load(); n != 8 {
		t.Errorf("went down after %d checks, want 8", n)
	}
	if got := rec.changes(); got[0] != (change{false, -1}) {
		t.Errorf("change = %v, want down", got[0])
	}
}

func TestRunnerAlphaStartsDown(t *testing.T) {
	r := NewRunner(4, quiet())
	p := script(true)
	var rec recorder
	tm := fast
	tm.StartUp = false
	r.Add("rs", []Probe{p}, tm, rec.onChange)
	if up, _ := r.Up("rs"); up {
		t.Fatal("alpha server starts up")
	}
	start(t, r)
	waitFor(t, "4 checks", func() bool { return p.calls.Load() >= 4 })
	if got, want := rec.changes(), []change{{true, -1}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
}

func TestRunnerAllProbesMustPass(t *testing.T) {
	r := NewRunner(4, quiet())
	good, bad := script(true), script(true, false)
	var rec recorder
	tm := fast
	tm.Retry = 0
	r.Add("rs", []Probe{good, bad}, tm, rec.onChange)
	start(t, r)
	waitFor(t, "4 checks of each", func() bool { return good.calls.Load() >= 4 && bad.calls.Load() >= 4 })
	if got, want := rec.changes(), []change{{false, -1}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
}

func TestRunnerDynamicWeight(t *testing.T) {
	r := NewRunner(4, quiet())
	p := &scripted{results: []Result{{Up: true, Weight: -1}, {Up: true, Weight: 3}, {Up: true, Weight: 3}, {Up: true, Weight: 7}}}
	var rec recorder
	r.Add("rs", []Probe{p}, fast, rec.onChange)
	start(t, r)
	waitFor(t, "6 checks", func() bool { return p.calls.Load() >= 6 })
	if got, want := rec.changes(), []change{{true, 3}, {true, 7}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
}

func TestRunnerRemove(t *testing.T) {
	r := NewRunner(4, quiet())
	p := script(false)
	var calls atomic.Int64
	tm := fast
	tm.Retry = 0
	r.Add("rs", []Probe{p}, tm, func(bool, int32, string) { calls.Add(1) })
	if err := r.Add("rs", []Probe{p}, tm, nil); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second Add = %v, want ErrDuplicate", err)
	}
	start(t, r)
	waitFor(t, "a check", func() bool { return p.calls.Load() >= 1 })
	if !r.Remove("rs") {
		t.Fatal("Remove = false")
	}
	if r.Remove("rs") {
		t.Error("second Remove = true")
	}
	n, c := p.calls.Load(), calls.Load()
	// Let a few delay loops pass; the probe must not run again. Removal
	// waits for any in-flight record, so at most one more call.
	time.Sleep(5 * fast.DelayLoop)
	if got := p.calls.Load(); got > n+1 {
		t.Errorf("probe ran %d times after Remove", got-n)
	}
	if got := calls.Load(); got != c {
		t.Errorf("onChange called %d times after Remove", got-c)
	}
}

// gauge counts probes in flight, the most seen at once and those done.
// As a Probe, it takes a millisecond and succeeds.
type gauge struct {
	in, peak, done atomic.Int64
}

// enter and leave bracket one probe.
func (g *gauge) enter() {
	n := g.in.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
}

func (g *gauge) leave() {
	g.in.Add(-1)
	g.done.Add(1)
}

func (g *gauge) Check(ctx context.Context) Result {
	g.enter()
	select {
	case <-time.After(time.Millisecond):
	case <-ctx.Done():
	}
	g.leave()
	return Result{Up: true, Weight: -1}
}

func TestRunnerBoundedConcurrency(t *testing.T) {
	const servers, limit = 200, 8
	r := NewRunner(limit, quiet())
	var g gauge
	tm := Timing{DelayLoop: 20 * time.Millisecond, Retry: 1, Warmup: 10 * time.Millisecond, StartUp: true}
	for i := range servers {
		if err := r.Add(fmt.Sprint("rs", i), []Probe{&g}, tm, nil); err != nil {
			t.Fatal(err)
		}
	}
	start(t, r)
	waitFor(t, "each server checked twice", func() bool { return g.done.Load() >= 2*servers })
	if p := g.peak.Load(); p > limit {
		t.Fatalf("%d probes in flight, limit %d", p, limit)
	} else if p < 2 {
		t.Errorf("peak %d in flight: the pool does not run probes concurrently", p)
	}
}

// named is a scripted probe with a keepalived-style name.
type named struct{ *scripted }

func (named) String() string { return "TCP connection to [198.19.0.11]:tcp:80" }

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func TestRunnerLogWording(t *testing.T) {
	var buf syncBuffer
	r := NewRunner(2, slog.New(slog.NewTextHandler(&buf, nil)))
	p := named{script(true, false, false, true)}
	var rec recorder
	const key = "[198.19.0.11]:tcp:80 from VS [198.18.0.100]:tcp:80"
	r.Add(key, []Probe{p}, fast, rec.onChange)
	start(t, r)
	waitFor(t, "down and up", func() bool { return len(rec.changes()) >= 2 })
	for _, want := range []string{
		`msg="TCP connection to [198.19.0.11]:tcp:80 failed after 1 retries: fake failure"`,
		`msg="Removing service ` + key + `"`,
		`msg="TCP connection to [198.19.0.11]:tcp:80 success."`,
		`msg="Adding service ` + key + `"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s; log:\n%s", want, buf.String())
		}
	}
}
