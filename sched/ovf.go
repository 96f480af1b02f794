package sched

// ovf is ip_vs_ovf.c, overflow: the highest weight among destinations that
// are not overloaded, have weight > 0 and have no more active connections
// than their weight (active == weight still qualifies); ties go to the
// earliest. Connections overflow to the next weight down once the heaviest
// destination's active count passes its weight.
type ovf struct{}

func init() { register("ovf", func(Flags) Scheduler { return ovf{} }) }

func (ovf) Update([]Dest) {}

func (ovf) Schedule(dests []Dest, _ *Packet) int {
	best, hw := -1, int32(0)
	for i := range dests {
		d := &dests[i]
		w := d.Weight
		if d.overloaded() || d.active() > w || w == 0 {
			continue
		}
		if best < 0 || w > hw {
			best, hw = i, w
		}
	}
	return best
}
