package sched

// lblcr is ip_vs_lblcr.c, locality-based least connection with
// replication: each destination address of the traffic has a set of real
// servers, newest first.
//
// For a cached address the set's weighted least loaded member (available,
// weight > 0, not DestOverload) is the candidate. Then, if the set has more
// than one member and was not modified for the expiration time (24 h), its
// weighted most loaded member (weight > 0, whether available or not) is
// removed. The candidate is used unless there is none or it is overloaded
// in lblc's sense; then wlc's choice is made and added to the set. An
// uncached address gets a new set holding wlc's choice.
type lblcr struct {
	refs  destRefs
	tbl   locTable
	elems []setElem
	free  int32
}

// setElem is ip_vs_dest_set_elem.
type setElem struct {
	dest int32 // ref id
	next int32
}

func init() { register("lblcr", newLBLCR) }

func newLBLCR(Flags) Scheduler {
	s := &lblcr{}
	s.tbl.init()
	s.tbl.onFree = s.eraseAll
	s.elems = make([]setElem, locSetCapacity)
	for i := range s.elems {
		s.elems[i].next = int32(i + 1)
	}
	s.elems[len(s.elems)-1].next = locNoEntry
	return s
}

// Update maps set members to the new list; see lblc.Update.
func (s *lblcr) Update(dests []Dest) { s.refs.update(dests) }

// insert is ip_vs_dest_set_insert: add at the head unless (with check)
// already a member; a new member stamps the set's modification time. With
// no element left it does nothing, as when the kernel's kmalloc fails.
func (s *lblcr) insert(e, id int32, check bool, now int64) {
	en := &s.tbl.entries[e]
	if check {
		for x := en.setHead; x != locNoEntry; x = s.elems[x].next {
			if s.elems[x].dest == id {
				return
			}
		}
	}
	x := s.free
	if x == locNoEntry {
		return
	}
	s.free = s.elems[x].next
	s.elems[x] = setElem{dest: id, next: en.setHead}
	en.setHead = x
	en.setSize++
	en.setMod = now
}

// erase is ip_vs_dest_set_erase.
func (s *lblcr) erase(e, id int32, now int64) {
	en := &s.tbl.entries[e]
	for p := &en.setHead; *p != locNoEntry; p = &s.elems[*p].next {
		if x := *p; s.elems[x].dest == id {
			en.setSize--
			en.setMod = now
			*p = s.elems[x].next
			s.elems[x].next = s.free
			s.free = x
			return
		}
	}
}

// eraseAll is ip_vs_dest_set_eraseall, run when an entry is freed.
func (s *lblcr) eraseAll(e int32) {
	en := &s.tbl.entries[e]
	for x := en.setHead; x != locNoEntry; {
		next := s.elems[x].next
		s.elems[x].next = s.free
		s.free = x
		x = next
	}
	en.setHead = locNoEntry
	en.setSize = 0
}

// setMin is ip_vs_dest_set_min: the weighted least loaded member, starting
// from the first that is not overloaded, has weight > 0 and is available;
// after it a member must be strictly less loaded and available.
func (s *lblcr) setMin(dests []Dest, e int32) int32 {
	x := s.tbl.entries[e].setHead
	least := int32(locNoEntry)
	var loh int64
	for ; x != locNoEntry; x = s.elems[x].next {
		d := s.refs.dest(dests, s.elems[x].dest)
		if d.overloaded() {
			continue
		}
		if d.Weight > 0 && d.available() {
			least, loh = s.elems[x].dest, int64(connOverhead(d))
			break
		}
	}
	if least < 0 {
		return least
	}
	lw := int64(s.refs.dest(dests, least).Weight)
	for x = s.elems[x].next; x != locNoEntry; x = s.elems[x].next {
		d := s.refs.dest(dests, s.elems[x].dest)
		if d.overloaded() {
			continue
		}
		doh := int64(connOverhead(d))
		if loh*int64(d.Weight) > doh*lw && d.available() {
			least, loh, lw = s.elems[x].dest, doh, int64(d.Weight)
		}
	}
	return least
}

// setMax is ip_vs_dest_set_max: the weighted most loaded member with
// weight > 0, flags not looked at; ties keep the earlier (newer) member.
func (s *lblcr) setMax(dests []Dest, e int32) int32 {
	x := s.tbl.entries[e].setHead
	most := int32(locNoEntry)
	var moh int64
	for ; x != locNoEntry; x = s.elems[x].next {
		d := s.refs.dest(dests, s.elems[x].dest)
		if d.Weight > 0 {
			most, moh = s.elems[x].dest, int64(connOverhead(d))
			break
		}
	}
	if most < 0 {
		return most
	}
	mw := int64(s.refs.dest(dests, most).Weight)
	for x = s.elems[x].next; x != locNoEntry; x = s.elems[x].next {
		d := s.refs.dest(dests, s.elems[x].dest)
		doh := int64(connOverhead(d))
		if moh*int64(d.Weight) < doh*mw && d.Weight > 0 {
			most, moh, mw = s.elems[x].dest, doh, int64(d.Weight)
		}
	}
	return most
}

func (s *lblcr) Schedule(dests []Dest, p *Packet) int {
	now := p.Now
	s.tbl.expire(now)
	a := makeCacheAddr(p.Dst.Addr())
	if e := s.tbl.get(a); e >= 0 {
		en := &s.tbl.entries[e]
		en.lastuse = now
		cand := s.setMin(dests, e)
		if en.setSize > 1 && now > en.setMod+locExpiration {
			if m := s.setMax(dests, e); m >= 0 {
				s.erase(e, m, now)
			}
		}
		// A candidate is available, so it is in the list.
		if cand >= 0 && !lbOverloaded(dests, s.refs.dest(dests, cand)) {
			return int(s.refs.refs[cand].idx)
		}
		best := weightedLeast(dests)
		if best < 0 {
			return -1
		}
		s.insert(e, s.refs.ofIdx[best], true, now)
		return best
	}
	best := weightedLeast(dests)
	if best < 0 {
		return -1
	}
	if e := s.tbl.add(a, now); e >= 0 {
		s.insert(e, s.refs.ofIdx[best], false, now)
	}
	return best
}
