package daemon

import (
	"context"
	"time"

	"github.com/uvs-project/uvs/dataplane"
)

// rate is one estimate, per second.
type rate struct{ cps, inpps, outpps, inbps, outbps uint64 }

type rates struct {
	svc, dest map[uint32]rate
}

// estimate keeps rate estimates as IPVS's estimator does: sample every 2
// seconds and smooth with an exponentially weighted average (IPVS weights
// the new sample by 1/4).
func (d *Daemon) estimate(ctx context.Context) {
	const every = 2 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	prevS, prevD := d.engine.ServiceTotals(), d.engine.DestTotals()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		curS, curD := d.engine.ServiceTotals(), d.engine.DestTotals()
		d.zmu.Lock()
		d.rates.svc = smooth(d.rates.svc, prevS, curS, every)
		d.rates.dest = smooth(d.rates.dest, prevD, curD, every)
		d.zmu.Unlock()
		prevS, prevD = curS, curD
	}
}

func smooth(old map[uint32]rate, prev, cur map[uint32]dataplane.Totals, dt time.Duration) map[uint32]rate {
	out := make(map[uint32]rate, len(cur))
	sec := uint64(dt / time.Second)
	ewma := func(o, sample uint64) uint64 { return o - o/4 + sample/4 }
	for id, c := range cur {
		p := prev[id]
		o := old[id]
		out[id] = rate{
			cps:    ewma(o.cps, (c.Conns-p.Conns)/sec),
			inpps:  ewma(o.inpps, (c.InPkts-p.InPkts)/sec),
			outpps: ewma(o.outpps, (c.OutPkts-p.OutPkts)/sec),
			inbps:  ewma(o.inbps, (c.InBytes-p.InBytes)/sec),
			outbps: ewma(o.outbps, (c.OutBytes-p.OutBytes)/sec),
		}
	}
	return out
}
