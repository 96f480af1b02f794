package sched

// fo is ip_vs_fo.c, weighted failover: the highest weight among the
// destinations that are not overloaded; ties go to the earliest. Weight 0
// is never picked.
type fo struct{}

func init() { register("fo", func(Flags) Scheduler { return fo{} }) }

func (fo) Update([]Dest) {}

func (fo) Schedule(dests []Dest, _ *Packet) int {
	best, hw := -1, int32(0)
	for i := range dests {
		d := &dests[i]
		if !d.overloaded() && d.Weight > hw {
			best, hw = i, d.Weight
		}
	}
	return best
}
