package sched

import "net/netip"

// rr is ip_vs_rr.c: round robin over the destinations with weight > 0 that
// are not overloaded, continuing after the last one picked.
type rr struct {
	// pos is the last destination picked (svc->sched_data), -1 for the
	// list head, where a fresh service starts.
	pos  int
	keys []netip.AddrPort // the list of the last Update, to follow pos
}

func init() { register("rr", func(Flags) Scheduler { return &rr{pos: -1} }) }

// Update keeps the position on the same destination. When that destination
// was removed, ip_vs_rr_del_dest moves the position to its predecessor in
// the list (or the head), so the next pick is the removed one's successor;
// removing several at once is the same as removing them one by one.
// IPVS's add_dest for rr does nothing: new destinations are picked when the
// walk reaches them.
func (s *rr) Update(dests []Dest) {
	idx := make(map[netip.AddrPort]int, len(dests))
	for i := range dests {
		idx[destKey(&dests[i])] = i
	}
	p := min(s.pos, len(s.keys)-1)
	for ; p >= 0; p-- {
		if j, ok := idx[s.keys[p]]; ok {
			p = j
			break
		}
	}
	s.pos = p
	s.keys = s.keys[:0]
	for i := range dests {
		s.keys = append(s.keys, destKey(&dests[i]))
	}
}

// Schedule walks from the destination after the last pick to the end of
// the list, then from the start up to and including the last pick. From
// the head there is only the one pass.
func (s *rr) Schedule(dests []Dest, _ *Packet) int {
	last := min(s.pos, len(dests)-1)
	for i := last + 1; i < len(dests); i++ {
		if d := &dests[i]; !d.overloaded() && d.Weight > 0 {
			s.pos = i
			return i
		}
	}
	for i := 0; i <= last; i++ {
		if d := &dests[i]; !d.overloaded() && d.Weight > 0 {
			s.pos = i
			return i
		}
	}
	return -1
}
