package sched

// wlc is ip_vs_wlc.c: the lowest overhead/weight, compared as
// overhead1*weight2 > overhead2*weight1 in 64 bits. The first destination
// that is not overloaded and has weight > 0 is the starting pick; after
// it, overloaded ones are skipped and only a strictly lower load displaces
// the pick (weight-0 ones never can), so ties go to the earliest.
type wlc struct{}

func init() { register("wlc", func(Flags) Scheduler { return wlc{} }) }

func (wlc) Update([]Dest) {}

func (wlc) Schedule(dests []Dest, _ *Packet) int { return weightedLeast(dests) }

// weightedLeast is the loop ip_vs_wlc_schedule, __ip_vs_lblc_schedule and
// __ip_vs_lblcr_schedule share.
func weightedLeast(dests []Dest) int {
	least := -1
	var loh int64
	i := 0
	for ; i < len(dests); i++ {
		d := &dests[i]
		if !d.overloaded() && d.Weight > 0 {
			least, loh = i, int64(connOverhead(d))
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
		doh := int64(connOverhead(d))
		if loh*int64(d.Weight) > doh*int64(dests[least].Weight) {
			least, loh = i, doh
		}
	}
	return least
}
