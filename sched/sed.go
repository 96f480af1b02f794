package sched

// sed is ip_vs_sed.c, shortest expected delay: wlc's loop with the
// overhead (active+1), inactive connections ignored. The kernel compares
// (active+1)*weight cross products; scaling both sides by 256 as some
// descriptions do changes no outcome. Ties go to the earliest.
type sed struct{}

func init() { register("sed", func(Flags) Scheduler { return sed{} }) }

func (sed) Update([]Dest) {}

// expectedDelay is ip_vs_sed_dest_overhead and ip_vs_nq_dest_overhead, an
// unsigned int in the kernel.
func expectedDelay(d *Dest) int64 { return int64(uint32(d.active() + 1)) }

func (sed) Schedule(dests []Dest, _ *Packet) int {
	least := -1
	var loh int64
	i := 0
	for ; i < len(dests); i++ {
		d := &dests[i]
		if !d.overloaded() && d.Weight > 0 {
			least, loh = i, expectedDelay(d)
			break
		}
	}
	if least < 0 {
		return -1
	}
	for i++; i < len(dests); i++ {
		d := &dests[i]
		if d.overloaded() {
			continue
		}
		doh := expectedDelay(d)
		if loh*int64(d.Weight) > doh*int64(dests[least].Weight) {
			least, loh = i, doh
		}
	}
	return least
}
