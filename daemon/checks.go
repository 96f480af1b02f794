package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

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
			if err := r.Add(key, probes, health.TimingFor(&rs.Checkers[0]), d.onHealth(cs.Key, dc, rs.InhibitOnFailure)); err != nil {
				return nil, err
			}
			n++
		}
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

// onHealth applies a checker's verdict to the model.
func (d *Daemon) onHealth(k service.Key, dc service.DestConfig, inhibit bool) health.OnChange {
	return func(up bool, weight int32, reason string) {
		c := dc
		if weight >= 0 {
			c.Weight = weight // MISC_CHECK misc_dynamic
		}
		var err error
		switch {
		case up && inhibit:
			err = d.model.EditDest(k, c)
		case up:
			err = d.model.AddDest(k, c)
			if err == nil {
				d.kickResolver()
			} else if strings.Contains(err.Error(), service.ErrExists.Error()) {
				err = d.model.EditDest(k, c) // a weight change while up
			}
		case inhibit:
			c.Weight = 0
			err = d.model.EditDest(k, c)
		default:
			err = d.model.DelDest(k, c.Addr, c.Port)
		}
		if err != nil {
			d.log.Warn("applying health check", "service", k.String(), "err", err)
		}
		d.log.Log(context.Background(), slog.LevelInfo, "health", "service", k.String(), "up", up, "reason", reason)
	}
}
