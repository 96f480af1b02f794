package daemon

import (
	"context"
	"errors"
	"fmt"
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

// startChecks registers every real server that has checkers with a
// health runner. A failing server leaves its service, or gets weight 0
// with inhibit_on_failure, and comes back when healthy, as keepalived
// does with IPVS. Servers start up (keepalived's default without alpha).
func (d *Daemon) startChecks(ctx context.Context, cfg *config.Config) (*health.Runner, error) {
	r := health.NewRunner(maxChecks, d.log)
	n := 0
	for _, es := range cfg.ExpandedServices() {
		vs := es.VS
		cs, err := expandedConfig(es)
		if err != nil {
			return nil, err
		}
		q := d.newQuorum(cs.Key, es)
		for i := range vs.RealServers {
			rs := &vs.RealServers[i]
			if len(rs.Checkers) == 0 {
				continue
			}
			var probes []health.Probe
			for j := range rs.Checkers {
				p, err := health.NewProbe(rs.Addr, rs.Port, &rs.Checkers[j])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", rs.Checkers[j].Pos, err)
				}
				probes = append(probes, p)
			}
			port := rs.Port
			if port == 0 {
				port = es.Port
			}
			fwd, _ := lbKind(rs.LBKind)
			dc := service.DestConfig{Addr: rs.Addr.As4(), Port: port, Fwd: fwd, Weight: rs.Weight,
				UThreshold: rs.UThreshold, LThreshold: rs.LThreshold}
			proto := strings.ToLower(vs.Protocol)
			key := fmt.Sprintf("[%v]:%s:%d from VS [%v]:%s:%d", rs.Addr, proto, port, es.Addr, proto, es.Port)
			timing := health.TimingFor(&rs.Checkers[0])
			if !timing.StartUp {
				// alpha: the server starts down and joins on its
				// first successful check.
				q.set(destKey(dc), dc, false)
				if rs.InhibitOnFailure {
					c := dc
					c.Weight = 0
					_ = d.model.EditDest(cs.Key, c)
				} else {
					_ = d.model.DelDest(cs.Key, dc.Addr, dc.Port)
				}
			}
			if err := r.Add(key, probes, timing, d.onHealth(cs.Key, dc, rs, q)); err != nil {
				return nil, err
			}
			n++
		}
		q.evaluate(d)
	}
	if n == 0 {
		return nil, nil
	}
	go func() {
		if err := r.Run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("health checks stopped", "err", err)
		}
	}()
	d.log.Info("health checks running", "real_servers", n, "max_concurrent", maxChecks)
	return r, nil
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
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", script).CombinedOutput(); err != nil {
			d.log.Warn("notify script", "script", script, "err", err, "output", string(out))
		}
	}()
}

// quorum is keepalived's quorum logic for one virtual service: while the
// weights of the live real servers add up to less than quorum (minus
// hysteresis), the live servers leave the pool and the sorry server, if
// any, takes over; once they reach quorum (plus hysteresis) again they
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
		rs := &vs.RealServers[i]
		port := rs.Port
		if port == 0 {
			port = es.Port
		}
		fwd, _ := lbKind(rs.LBKind)
		dc := service.DestConfig{Addr: rs.Addr.As4(), Port: port, Fwd: fwd, Weight: rs.Weight, UThreshold: rs.UThreshold, LThreshold: rs.LThreshold}
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

func (q *quorum) lostNow() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lost
}

// evaluate moves the service in or out of the lost-quorum state.
func (q *quorum) evaluate(d *Daemon) {
	q.mu.Lock()
	var sum int64
	for _, c := range q.live {
		sum += int64(c.Weight)
	}
	var change, lost bool
	switch {
	case !q.lost && sum < q.quorum-q.hyst:
		q.lost, change, lost = true, true, true
	case q.lost && sum >= q.quorum+q.hyst:
		q.lost, change = false, true
	}
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
