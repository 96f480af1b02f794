package health

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrDuplicate is returned by Add for a key already present.
var ErrDuplicate = errors.New("health: duplicate checker key")

// OnChange is told a real server's new state: up, and its dynamic weight
// (-1 when no MISC_CHECK has set one), with a reason for the log.
type OnChange func(up bool, weight int32, reason string)

// Runner runs the checkers of many real servers on timers, with at most
// maxConcurrent probes in flight. Waiting checks hold no goroutine.
type Runner struct {
	max int
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	queue   probeHeap
	wake    chan struct{} // cap 1: the head of queue may have changed
}

type entry struct {
	key      string
	timing   Timing
	onChange OnChange
	ctx      context.Context // cancelled by Remove
	cancel   context.CancelFunc

	mu     sync.Mutex // guards the state below; held across onChange
	gone   bool
	up     bool
	weight int32
	probes []*probeState
}

// allUp is whether every probe of the entry is up (a server is up only
// when all its checkers say so).
func (e *entry) allUp() bool {
	for _, p := range e.probes {
		if !p.up {
			return false
		}
	}
	return true
}

type probeState struct {
	e     *entry
	p     Probe
	up    bool
	fails int       // consecutive failures while up
	at    time.Time // next run
	index int       // in Runner.queue; -1 when not queued
}

// NewRunner returns a Runner running at most maxConcurrent probes at once
// (at least 1). A nil logger means slog.Default().
func NewRunner(maxConcurrent int, logger *slog.Logger) *Runner {
	if logger == nil {
		logger = slog.Default()
	}
	return &Runner{
		max:     max(maxConcurrent, 1),
		log:     logger,
		entries: make(map[string]*entry),
		wake:    make(chan struct{}, 1),
	}
}

// Add starts checking one real server, named key in logs (for example
// "[198.19.0.11]:tcp:80 from VS [198.18.0.100]:tcp:80"). The server is up
// only while all probes are up. onChange is called on each change of
// state or dynamic weight, never concurrently for one key, and never
// after Remove(key) returns; it must not call Remove for its own key.
func (r *Runner) Add(key string, probes []Probe, t Timing, onChange OnChange) error {
	return r.add(key, probes, t, nil, onChange)
}

// State is a real server's checker state, as State reports it and Restore
// takes it: what keepalived carries over a reload for a real server that
// stays (its checkers' up/down and the retries they have used).
type State struct {
	Up     bool         // all probes up
	Weight int32        // MISC_CHECK's dynamic weight; -1 when none set
	Probes []ProbeState // one per probe, in the order given to Add
}

// ProbeState is one probe's part of a State.
type ProbeState struct {
	Up bool
	// Fails counts the consecutive failures of a probe that is up: the
	// retries it has used (it goes down once Fails exceeds Timing.Retry).
	Fails int
}

// Restore is Add for a server that starts in state st rather than in
// t.StartUp's: probe i starts as st.Probes[i] (a probe past the end of
// st.Probes starts as Add starts it), the server is up when every probe
// is, and its dynamic weight is st.Weight. No change is reported for the
// restored state itself, only for later changes from it.
func (r *Runner) Restore(key string, probes []Probe, t Timing, st State, onChange OnChange) error {
	return r.add(key, probes, t, &st, onChange)
}

// State reports key's current state; ok is false when key is not present.
func (r *Runner) State(key string) (st State, ok bool) {
	r.mu.Lock()
	e, ok := r.entries[key]
	r.mu.Unlock()
	if !ok {
		return State{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st = State{Up: e.up, Weight: e.weight, Probes: make([]ProbeState, len(e.probes))}
	for i, ps := range e.probes {
		st.Probes[i] = ProbeState{Up: ps.up, Fails: ps.fails}
	}
	return st, true
}

func (r *Runner) add(key string, probes []Probe, t Timing, st *State, onChange OnChange) error {
	t = t.normalized()
	e := &entry{key: key, timing: t, onChange: onChange, up: t.StartUp, weight: -1}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	now := time.Now()
	for i, p := range probes {
		at := now
		if t.Warmup > 0 {
			at = at.Add(rand.N(t.Warmup + 1))
		}
		ps := &probeState{e: e, p: p, up: t.StartUp, at: at, index: -1}
		if st != nil && i < len(st.Probes) {
			ps.up = st.Probes[i].Up
			if ps.up {
				ps.fails = min(max(st.Probes[i].Fails, 0), t.Retry)
			}
		}
		e.probes = append(e.probes, ps)
	}
	if st != nil {
		e.up = e.allUp()
		e.weight = max(st.Weight, -1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[key]; ok {
		e.cancel()
		return fmt.Errorf("%w: %s", ErrDuplicate, key)
	}
	r.entries[key] = e
	for _, ps := range e.probes {
		heap.Push(&r.queue, ps)
	}
	r.kick()
	return nil
}

// Remove stops checking key. Probes in flight are cancelled and their
// results dropped. It reports whether key was present.
func (r *Runner) Remove(key string) bool {
	r.mu.Lock()
	e, ok := r.entries[key]
	if ok {
		delete(r.entries, key)
		for _, ps := range e.probes {
			if ps.index >= 0 {
				heap.Remove(&r.queue, ps.index)
			}
		}
	}
	r.mu.Unlock()
	if !ok {
		return false
	}
	e.cancel()
	e.mu.Lock()
	e.gone = true
	e.mu.Unlock()
	return true
}

// Up reports whether key is present and currently up.
func (r *Runner) Up(key string) (up, ok bool) {
	r.mu.Lock()
	e, ok := r.entries[key]
	r.mu.Unlock()
	if !ok {
		return false, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.up, true
}

func (r *Runner) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run runs due probes until ctx is done, then waits for those in flight
// and returns ctx's error. Call it once.
func (r *Runner) Run(ctx context.Context) error {
	sem := make(chan struct{}, r.max)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Hold a worker slot before taking a probe off the queue, so a
		// probe waits in the queue (where Remove can reach it), not here.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		ps := r.next(ctx, timer)
		if ps == nil {
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r.runProbe(ctx, ps)
		})
	}
}

// next waits for the first due probe and takes it off the queue; nil when
// ctx is done.
func (r *Runner) next(ctx context.Context, timer *time.Timer) *probeState {
	for {
		r.mu.Lock()
		var wait time.Duration = time.Hour
		if len(r.queue) > 0 {
			wait = time.Until(r.queue[0].at)
			if wait <= 0 {
				ps := heap.Pop(&r.queue).(*probeState)
				r.mu.Unlock()
				return ps
			}
		}
		r.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-r.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

func (r *Runner) runProbe(ctx context.Context, ps *probeState) {
	e := ps.e
	pctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.ctx, cancel)
	res := ps.p.Check(pctx)
	stop()
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not the server's fault
	}
	delay := r.record(ps, res)
	if delay < 0 {
		return
	}
	r.mu.Lock()
	if r.entries[e.key] == e {
		ps.at = time.Now().Add(delay)
		heap.Push(&r.queue, ps)
		r.kick()
	}
	r.mu.Unlock()
}

// record applies one result to the state machine, reports any change and
// returns the delay before the probe's next run (-1: entry removed).
func (r *Runner) record(ps *probeState, res Result) time.Duration {
	e := ps.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return -1
	}
	t := e.timing
	name := probeName(ps.p)
	delay := t.DelayLoop
	var reason string
	switch {
	case res.Up:
		if !ps.up {
			reason = name + " success."
			r.log.Info(reason, "service", e.key)
		}
		ps.up, ps.fails = true, 0
	case ps.up:
		ps.fails++
		if ps.fails <= t.Retry {
			r.log.Debug(fmt.Sprintf("%s failed, retry %d of %d.", name, ps.fails, t.Retry),
				"service", e.key, "err", res.Err)
			delay = t.DelayBeforeRetry
			break
		}
		reason = fmt.Sprintf("%s failed after %d retries: %v", name, t.Retry, res.Err)
		r.log.Info(reason, "service", e.key)
		ps.up, ps.fails = false, 0
	}

	up := e.allUp()
	weight := e.weight
	if res.Weight >= 0 {
		weight = res.Weight
	}
	if up == e.up && weight == e.weight {
		return delay
	}
	switch {
	case up != e.up && up:
		r.log.Info("Adding service " + e.key)
	case up != e.up:
		r.log.Info("Removing service " + e.key)
	default:
		reason = fmt.Sprintf("%s set weight %d.", name, weight)
		r.log.Info("Setting weight of service "+e.key, "weight", weight)
	}
	e.up, e.weight = up, weight
	if e.onChange != nil {
		e.onChange(up, weight, reason)
	}
	return delay
}

func probeName(p Probe) string {
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", p)
}

// probeHeap orders probes by next run time.
type probeHeap []*probeState

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *probeHeap) Push(x any) {
	ps := x.(*probeState)
	ps.index = len(*h)
	*h = append(*h, ps)
}
func (h *probeHeap) Pop() any {
	old := *h
	ps := old[len(old)-1]
	old[len(old)-1] = nil
	ps.index = -1
	*h = old[:len(old)-1]
	return ps
}
