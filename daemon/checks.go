package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/health"
	"github.com/uvs-project/uvs/service"
)

// maxChecks bounds the probes in flight at once, whatever the number of
// real servers.
const maxChecks = 64

// omegaTimeout bounds the scripts omega runs when uvsd stops.
const omegaTimeout = 10 * time.Second

// checkSet is the health checking of one configuration: a runner for the
// real servers that have checkers, and each virtual service's quorum. A
// reload plans the next set, stops the current one, carries the state of
// the real servers that stay over to the next (as keepalived migrates
// their checkers), and starts it.
type checkSet struct {
	runner  *health.Runner              // nil when no real server has a checker
	svcs    []*checkedSvc               // in configuration order
	byKey   map[service.Key]*checkedSvc // svcs by key
	servers map[checkID]*checked
	done    chan struct{} // closed once the runner has stopped
}

// checkedSvc is one expanded virtual service.
type checkedSvc struct {
	key   service.Key
	es    config.Expanded
	q     *quorum
	dests map[[6]byte]bool // every real server of the service
	rss   []*checked       // those with checkers, in configuration order
}

// checkID names a real server of a virtual service across reloads.
type checkID struct {
	svc  service.Key
	dest [6]byte
}

// checked is one real server with checkers in one virtual service.
type checked struct {
	id      checkID
	key     string // the runner's, as keepalived logs it
	rs      *config.RealServer
	dc      service.DestConfig
	probes  []health.Probe
	prints  []string // each checker's identity, to match it after a reload
	dynamic bool     // a MISC_CHECK sets the weight
	timing  health.Timing
	start   health.State // the state it starts in
	state   health.State // the state the runner left it in, once stopped
}

func (d *Daemon) currentChecks() *checkSet {
	d.checkSetMu.Lock()
	defer d.checkSetMu.Unlock()
	return d.checkSet
}

// rsDest is the model's destination for real server rs of es.
func rsDest(es config.Expanded, rs *config.RealServer) service.DestConfig {
	port := rs.Port
	if port == 0 {
		port = es.Port
	}
	fwd, _ := lbKind(rs.LBKind)
	return service.DestConfig{Addr: rs.Addr.As4(), Port: port, Fwd: fwd, Weight: rs.Weight,
		UThreshold: rs.UThreshold, LThreshold: rs.LThreshold}
}

// checkerPrint identifies a checker across a reload: its kind, what it
// connects to and what it asks, not its timings (keepalived compares the
// checkers of a real server the same way before migrating their state).
func checkerPrint(c *config.Checker) string {
	k := *c
	k.Pos = config.Pos{}
	k.ConnectTimeout, k.Retry, k.DelayBeforeRetry, k.DelayLoop, k.Warmup, k.Alpha = 0, 0, 0, 0, 0, false
	k.URLs = append([]config.URL(nil), c.URLs...)
	for i := range k.URLs {
		k.URLs[i].Pos = config.Pos{}
	}
	return fmt.Sprintf("%+v", k)
}

// planChecks builds the checks of cfg without starting anything: a
// checker uvs cannot build refuses the configuration here.
func (d *Daemon) planChecks(cfg *config.Config) (*checkSet, error) {
	s := &checkSet{byKey: map[service.Key]*checkedSvc{}, servers: map[checkID]*checked{}}
	for _, es := range cfg.ExpandedServices() {
		vs := es.VS
		sc, err := expandedConfig(es)
		if err != nil {
			return nil, err
		}
		cs := &checkedSvc{key: sc.Key, es: es, q: d.newQuorum(sc.Key, es), dests: map[[6]byte]bool{}}
		s.svcs = append(s.svcs, cs)
		s.byKey[sc.Key] = cs
		for i := range vs.RealServers {
			rs := &vs.RealServers[i]
			dc := rsDest(es, rs)
			cs.dests[destKey(dc)] = true
			if len(rs.Checkers) == 0 {
				continue
			}
			c := &checked{id: checkID{sc.Key, destKey(dc)}, rs: rs, dc: dc, timing: health.TimingFor(&rs.Checkers[0])}
			for j := range rs.Checkers {
				p, err := health.NewProbe(rs.Addr, rs.Port, &rs.Checkers[j])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", rs.Checkers[j].Pos, err)
				}
				c.probes = append(c.probes, p)
				c.prints = append(c.prints, checkerPrint(&rs.Checkers[j]))
				c.dynamic = c.dynamic || (rs.Checkers[j].Kind == "MISC_CHECK" && rs.Checkers[j].MiscDynamic)
			}
			proto := strings.ToLower(vs.Protocol)
			c.key = fmt.Sprintf("[%v]:%s:%d from VS [%v]:%s:%d", rs.Addr, proto, dc.Port, es.Addr, proto, es.Port)
			cs.rss = append(cs.rss, c)
			s.servers[c.id] = c
		}
	}
	if len(s.servers) > 0 {
		s.runner = health.NewRunner(maxChecks, d.log)
	}
	return s, nil
}

// migrate sets the state each real server of s starts in: the state prev
// left it in when it was checked there, else up (down with alpha); and
// each service's quorum state. It follows keepalived's migrate_checkers:
// a checker the server had before keeps its up/down and the retries it
// has used; a new one starts up, or down with alpha unless the server was
// alive, and when one of the server's checkers is failing, a single
// failure of a new checker is enough.
func (s *checkSet) migrate(prev *checkSet) {
	if prev == nil {
		prev = &checkSet{} // nothing to carry over
	}
	for _, cs := range s.svcs {
		var pq *quorum
		if pcs := prev.byKey[cs.key]; pcs != nil {
			pq = pcs.q
			lost := pq.lostNow()
			cs.q.mu.Lock()
			cs.q.lost = lost
			cs.q.mu.Unlock()
		}
		for _, c := range cs.rss {
			old := prev.servers[c.id]
			if old != nil && len(old.state.Probes) != len(old.prints) {
				old = nil // never started
			}
			wasAlive := pq != nil && pq.alive(c.id.dest)
			c.start = migrateState(c, old, wasAlive)
			dc := c.dc
			if c.start.Weight >= 0 {
				dc.Weight = c.start.Weight
			}
			cs.q.set(c.id.dest, dc, c.start.Up)
		}
	}
}

// migrateState is the state c starts in, given its old self (nil when it
// had no checkers before) and whether its server was alive.
func migrateState(c *checked, old *checked, wasAlive bool) health.State {
	st := health.State{Weight: -1, Probes: make([]health.ProbeState, len(c.prints))}
	var fresh []int // the checkers old did not have
	failed := false
	var used []bool
	if old != nil {
		used = make([]bool, len(old.prints))
	}
checkers:
	for i, p := range c.prints {
		if old != nil {
			for j, q := range old.prints {
				if !used[j] && q == p {
					used[j] = true
					st.Probes[i] = old.state.Probes[j]
					failed = failed || !st.Probes[i].Up
					continue checkers
				}
			}
		}
		fresh = append(fresh, i)
	}
	for _, i := range fresh {
		st.Probes[i].Up = c.timing.StartUp || (wasAlive && !failed)
		if failed {
			st.Probes[i].Fails = c.timing.Retry // one failure is enough
		}
	}
	st.Up = true
	for _, p := range st.Probes {
		st.Up = st.Up && p.Up
	}
	if matched := len(fresh) < len(c.prints); matched && c.dynamic && old.state.Weight >= 0 {
		st.Weight = old.state.Weight
	}
	return st
}

// view is cfg, the configuration s was planned from, as the model must
// have it once s starts: each real server that s starts down is left out
// (weight 0 with inhibit_on_failure), a MISC_CHECK's dynamic weight is
// kept, and a service whose quorum is lost has the sorry server instead
// of its live servers. Sync applies it, so a reload never puts back, even
// for a moment, a server its checks removed. Each expanded service
// becomes a virtual_server of its own, as health is kept per expanded
// service.
func (s *checkSet) view(cfg *config.Config) *config.Config {
	v := *cfg
	v.VirtualServers = make([]config.VirtualServer, 0, len(s.svcs))
	for _, cs := range s.svcs {
		e := cs.es
		vs := *e.VS
		vs.Group, vs.Addr, vs.Port, vs.FWMark = "", e.Addr, e.Port, e.FWMark
		vs.RealServers = nil
		lost := cs.q.lostNow()
		kept := map[[6]byte]bool{}
		for j := range e.VS.RealServers {
			rs := e.VS.RealServers[j]
			id := destKey(rsDest(e, &rs))
			up := true
			if c := s.servers[checkID{cs.key, id}]; c != nil {
				up = c.start.Up
				if c.start.Weight >= 0 {
					rs.Weight = c.start.Weight
				}
			}
			switch {
			case up && lost:
				continue
			case up:
			case rs.InhibitOnFailure:
				rs.Weight = 0
			default:
				continue
			}
			kept[id] = true
			vs.RealServers = append(vs.RealServers, rs)
		}
		if sr := cs.q.sorry; lost && sr != nil && !kept[destKey(*sr)] {
			kind := vs.SorryServer.LBKind
			if kind == "" {
				kind = "NAT"
			}
			vs.RealServers = append(vs.RealServers, config.RealServer{Pos: vs.SorryServer.Pos,
				Addr: vs.SorryServer.Addr, Port: sr.Port, Weight: sr.Weight, LBKind: kind})
		}
		v.VirtualServers = append(v.VirtualServers, vs)
	}
	return &v
}

// startChecksLocked applies the starting state of s to the model and runs
// its checks until the daemon stops or a reload replaces them. The caller
// holds checksMu and has stopped the previous set.
func (d *Daemon) startChecksLocked(s *checkSet) {
	for _, cs := range s.svcs {
		k, q := cs.key, cs.q
		for _, c := range cs.rss {
			dc := c.dc
			var err error
			switch {
			case !c.start.Up && c.rs.InhibitOnFailure:
				dc.Weight = 0
				err = d.model.EditDest(k, dc)
			case !c.start.Up:
				err = d.model.DelDest(k, dc.Addr, dc.Port)
			case c.start.Weight >= 0 && !q.lostNow():
				dc.Weight = c.start.Weight
				err = d.model.EditDest(k, dc)
			}
			if err != nil && !errors.Is(err, service.ErrNotFound) {
				d.log.Warn("applying health state", "service", k.String(), "err", err)
			}
			if err := s.runner.Restore(c.key, c.probes, c.timing, c.start, d.onHealth(k, c.dc, c.rs, q)); err != nil {
				d.log.Warn("health check", "service", k.String(), "err", err)
			}
		}
		if q.lostNow() && q.sorry != nil {
			if err := d.model.AddDest(k, *q.sorry); err == nil {
				d.kickResolver()
			}
		}
		q.evaluate(d)
	}
	s.done = make(chan struct{})
	d.checkSetMu.Lock()
	again := d.checkSet != nil
	d.checkSet = s
	d.checkSetMu.Unlock()
	if !again {
		// Shutdown runs omega's scripts. Run returning may still cut
		// them short: see stopChecks.
		context.AfterFunc(d.ctx, d.stopChecks)
	}
	if s.runner == nil {
		close(s.done)
		d.checksCancel = nil
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	d.checksCancel = cancel
	go func() {
		defer close(s.done)
		if err := s.runner.Run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("health checks stopped", "err", err)
		}
	}()
	d.log.Info("health checks running", "real_servers", len(s.servers), "max_concurrent", maxChecks)
}

// stopChecksLocked stops the current checks, if any, and returns them
// with each real server's final state recorded. They stay current until
// startChecksLocked replaces them. The caller holds checksMu.
func (d *Daemon) stopChecksLocked() *checkSet {
	s := d.currentChecks()
	if s == nil {
		return nil
	}
	if d.checksCancel != nil {
		d.checksCancel()
		d.checksCancel = nil
	}
	<-s.done
	if s.runner != nil {
		for _, c := range s.servers {
			if st, ok := s.runner.State(c.key); ok {
				c.state = st
			}
		}
	}
	return s
}

// stopChecks stops the checks for good, when uvsd stops, and runs omega's
// scripts: for each virtual server with omega, the notify_down of each
// live real server, then quorum_down when its quorum was up. It waits for
// the scripts, at most omegaTimeout. It runs when the daemon's context is
// done; it is safe to call again (it does nothing then), and Run should
// call it before returning, so that the process does not exit under the
// scripts.
func (d *Daemon) stopChecks() {
	d.checksMu.Lock()
	defer d.checksMu.Unlock()
	s := d.stopChecksLocked()
	d.checkSetMu.Lock()
	d.checkSet = nil
	d.checkSetMu.Unlock()
	if s == nil {
		return
	}
	runScripts(d.log, s.removedScripts(nil), omegaTimeout)
}

// removedScripts are the scripts keepalived runs for what next no longer
// has (nil: uvsd stops, nothing stays): for a virtual server that is gone,
// with omega, the notify_down of its live real servers, then quorum_down
// when its quorum was up; for one that stays, the notify_down of each
// live real server it loses, whatever omega.
func (s *checkSet) removedScripts(next *checkSet) []string {
	var byVS []*config.VirtualServer
	svcs := map[*config.VirtualServer][]*checkedSvc{}
	for _, cs := range s.svcs {
		vs := cs.es.VS
		if svcs[vs] == nil {
			byVS = append(byVS, vs)
		}
		svcs[vs] = append(svcs[vs], cs)
	}
	if next == nil {
		next = &checkSet{} // nothing stays
	}
	var out []string
	for _, vs := range byVS {
		var stay []*checkedSvc // next's services of vs
		quorumUp := false
		for _, cs := range svcs[vs] {
			if next.byKey[cs.key] != nil {
				stay = append(stay, cs)
			}
			if !cs.q.lostNow() && cs.q.quorum-cs.q.hyst > 0 {
				quorumUp = true
			}
		}
		gone := len(stay) == 0
		if gone && !vs.Omega {
			continue
		}
		check := svcs[vs]
		if !gone {
			check = stay
		}
		for i := range vs.RealServers {
			rs := &vs.RealServers[i]
			if rs.NotifyDown == "" {
				continue
			}
			for _, cs := range check {
				id := destKey(rsDest(cs.es, rs))
				if !cs.q.alive(id) {
					continue
				}
				if !gone && next.byKey[cs.key].dests[id] {
					continue // still there
				}
				out = append(out, rs.NotifyDown)
				break
			}
		}
		if gone && quorumUp && vs.QuorumDown != "" {
			out = append(out, vs.QuorumDown)
		}
	}
	return out
}

// runScripts runs shell command lines, started in order and run
// concurrently, and waits for them, at most timeout; failures are logged
// with their output.
func runScripts(log *slog.Logger, scripts []string, timeout time.Duration) {
	if len(scripts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, script := range scripts {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			log.Warn("notify script", "script", script, "err", err)
			continue
		}
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				log.Warn("notify script", "script", script, "err", err, "output", out.String())
			}
		})
	}
	wg.Wait()
}

// onHealth applies a checker's verdict to the model, runs the real
// server's notify script, and re-evaluates the service's quorum.
func (d *Daemon) onHealth(k service.Key, dc service.DestConfig, rs *config.RealServer, q *quorum) health.OnChange {
	inhibit := rs.InhibitOnFailure
	id := destKey(dc)
	return func(up bool, weight int32, reason string) {
		c := dc
		if weight >= 0 {
			c.Weight = weight // MISC_CHECK misc_dynamic
		}
		q.set(id, c, up)
		var err error
		switch {
		case q.lostNow():
			// The sorry server holds the service: the pool stays
			// empty until the quorum is back.
		case up && inhibit:
			err = d.model.EditDest(k, c)
		case up:
			err = d.model.AddDest(k, c)
			if err == nil {
				d.kickResolver()
			} else if errors.Is(err, service.ErrExists) {
				err = d.model.EditDest(k, c) // a weight change while up
			}
		case inhibit:
			c.Weight = 0
			err = d.model.EditDest(k, c)
		default:
			err = d.model.DelDest(k, c.Addr, c.Port)
		}
		if err != nil && !errors.Is(err, service.ErrNotFound) {
			d.log.Warn("applying health check", "service", k.String(), "err", err)
		}
		d.log.Info("health", "service", k.String(), "up", up, "reason", reason)
		script := rs.NotifyDown
		if up {
			script = rs.NotifyUp
		}
		d.notify(script)
		q.evaluate(d)
	}
}

// notify runs a keepalived notify script in the background, bounded in
// time.
func (d *Daemon) notify(script string) {
	if script == "" {
		return
	}
	go runScripts(d.log, []string{script}, notifyTimeout)
}

// quorum is keepalived's quorum logic for one virtual service: while the
// weights of the live real servers add up to less than quorum minus
// hysteresis, the live servers leave the pool and the sorry server, if
// any, takes over; once they reach quorum plus hysteresis again they
// come back and the sorry server goes.
type quorum struct {
	mu         sync.Mutex
	key        service.Key
	quorum     int64
	hyst       int64
	live       map[[6]byte]service.DestConfig
	sorry      *service.DestConfig
	lost       bool
	upScript   string
	downScript string
}

func (d *Daemon) newQuorum(k service.Key, es config.Expanded) *quorum {
	vs := es.VS
	q := &quorum{key: k, quorum: int64(vs.Quorum), hyst: int64(vs.Hysteresis), live: map[[6]byte]service.DestConfig{},
		upScript: vs.QuorumUp, downScript: vs.QuorumDown}
	for i := range vs.RealServers {
		dc := rsDest(es, &vs.RealServers[i])
		q.live[destKey(dc)] = dc // keepalived starts servers up (no alpha)
	}
	if s := vs.SorryServer; s != nil && s.Addr.Is4() {
		fwd, _ := lbKind(s.LBKind)
		port := s.Port
		if port == 0 {
			port = es.Port
		}
		q.sorry = &service.DestConfig{Addr: s.Addr.As4(), Port: port, Fwd: fwd, Weight: 1}
	}
	return q
}

func (q *quorum) set(id [6]byte, c service.DestConfig, up bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if up {
		q.live[id] = c
	} else {
		delete(q.live, id)
	}
}

func (q *quorum) alive(id [6]byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.live[id]
	return ok
}

func (q *quorum) lostNow() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lost
}

// next is keepalived's update_quorum_state: the quorum, held, is lost
// when the live weight falls below quorum - hysteresis; lost, it is
// gained when the weight reaches quorum + hysteresis.
func (q *quorum) next(sum int64) (lost bool) {
	if q.lost {
		return sum < q.quorum+q.hyst
	}
	return sum < q.quorum-q.hyst
}

// evaluate moves the service in or out of the lost-quorum state.
func (q *quorum) evaluate(d *Daemon) {
	q.mu.Lock()
	var sum int64
	for _, c := range q.live {
		sum += int64(c.Weight)
	}
	lost := q.next(sum)
	change := lost != q.lost
	q.lost = lost
	live := make([]service.DestConfig, 0, len(q.live))
	for _, c := range q.live {
		live = append(live, c)
	}
	q.mu.Unlock()
	if !change {
		return
	}
	if lost {
		d.log.Info("lost quorum", "service", q.key.String(), "weight", sum, "quorum", q.quorum)
		for _, c := range live {
			_ = d.model.DelDest(q.key, c.Addr, c.Port)
		}
		if q.sorry != nil {
			if err := d.model.AddDest(q.key, *q.sorry); err == nil {
				d.kickResolver()
				d.log.Info("adding sorry server", "service", q.key.String())
			}
		}
		d.notify(q.downScript)
		return
	}
	d.log.Info("gained quorum", "service", q.key.String(), "weight", sum, "quorum", q.quorum)
	for _, c := range live {
		_ = d.model.AddDest(q.key, c)
	}
	if q.sorry != nil {
		_ = d.model.DelDest(q.key, q.sorry.Addr, q.sorry.Port)
		d.log.Info("removing sorry server", "service", q.key.String())
	}
	d.kickResolver()
	d.notify(q.upScript)
}
