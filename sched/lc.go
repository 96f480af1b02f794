package sched

// lc is ip_vs_lc.c: the destination with the lowest connection overhead
// (active*256 + inactive), skipping overloaded and weight-0 ones. Only a
// strictly lower overhead displaces the current pick, so ties go to the
// earliest in list order.
type lc struct{}

func init() { register("lc", func(Flags) Scheduler { return lc{} }) }

func (lc) Update([]Dest) {}

func (lc) Schedule(dests []Dest, _ *Packet) int {
	least := -1
	var loh uint32 // the kernel's unsigned int
	for i := range dests {
		d := &dests[i]
		if d.overloaded() || d.Weight == 0 {
			continue
		}
		doh := uint32(connOverhead(d))
		if least < 0 || doh < loh {
			least, loh = i, doh
		}
	}
	return least
}
