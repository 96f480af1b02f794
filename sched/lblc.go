package sched

// lblc is ip_vs_lblc.c, locality-based least connection: each destination
// address of the traffic (Packet.Dst) sticks to one real server. The cached
// server is used while it is available, has weight > 0 and is not
// overloaded in lblc's sense (more active connections than its weight
// while another has fewer than half its weight); the DestOverload flag does
// not disqualify it. Otherwise wlc's choice is made, and cached in place of
// the old entry (unhashed and hashed anew at its chain's head). Idle
// entries are collected as described at locTable.
type lblc struct {
	refs destRefs
	tbl  locTable
}

func init() { register("lblc", newLBLC) }

func newLBLC(Flags) Scheduler {
	s := &lblc{}
	s.tbl.init()
	return s
}

// Update maps cached servers to the new list. A server removed from the
// service stays referenced (unavailable) as the kernel's trash dest does,
// and is the same server again if added back.
func (s *lblc) Update(dests []Dest) { s.refs.update(dests) }

func (s *lblc) Schedule(dests []Dest, p *Packet) int {
	now := p.Now
	s.tbl.expire(now)
	a := makeCacheAddr(p.Dst.Addr())
	e := s.tbl.get(a)
	if e >= 0 {
		en := &s.tbl.entries[e]
		en.lastuse = now
		d := s.refs.dest(dests, en.dest)
		if d.available() && d.Weight > 0 && !lbOverloaded(dests, d) {
			return int(s.refs.refs[en.dest].idx)
		}
	}
	best := weightedLeast(dests)
	if best < 0 {
		return -1
	}
	// ip_vs_lblc_new
	id := s.refs.ofIdx[best]
	if e >= 0 {
		if s.tbl.entries[e].dest == id {
			return best
		}
		s.tbl.del(e)
	}
	if e = s.tbl.add(a, now); e >= 0 {
		s.tbl.entries[e].dest = id
	}
	return best
}
