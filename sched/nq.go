package sched

// nq is ip_vs_nq.c, never queue: the first destination in list order with
// no active connection wins outright; otherwise the shortest expected delay
// as in sed. Overloaded and weight-0 destinations are skipped throughout.
type nq struct{}

func init() { register("nq", func(Flags) Scheduler { return nq{} }) }

func (nq) Update([]Dest) {}

func (nq) Schedule(dests []Dest, _ *Packet) int {
	least := -1
	var loh int64
	for i := range dests {
		d := &dests[i]
		if d.overloaded() || d.Weight == 0 {
			continue
		}
		if d.active() == 0 {
			return i
		}
		doh := expectedDelay(d)
		if least < 0 || loh*int64(d.Weight) > doh*int64(dests[least].Weight) {
			least, loh = i, doh
		}
	}
	return least
}
