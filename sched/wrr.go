package sched

// wrr is ip_vs_wrr.c. Passes over the list pick every destination whose
// weight is at least the current weight cw; cw starts at the largest weight
// and steps down by the gcd of the weights after each pass. IPVS lowers the
// start (mw) by gcd-1 so that the last pass is for cw = 1 and also catches
// weights below the gcd. Weights 4, 3, 2 give A A B A B C A B C.
type wrr struct {
	cl int   // last pick (mark->cl), -1 for the list head
	cw int32 // current weight
	mw int32 // max weight - (di - 1)
	di int32 // gcd of the positive weights, 1 if none
}

func init() { register("wrr", func(Flags) Scheduler { return &wrr{cl: -1} }) }

// Update is ip_vs_wrr_dest_changed, which IPVS runs on every add, delete
// and edit: back to the list head, new gcd and max weight, and cw kept
// where possible: reset to mw when above it (or zero, as on a fresh
// service), otherwise rounded down to a multiple of the new gcd plus one.
//
// cw carries over from one call to the next, so an Update standing for
// several IPVS operations can leave cw where IPVS, stepping through the
// intermediate lists, would not. The first Update is a fresh service:
// cw = mw, which is also what adding the destinations one by one gives
// unless their gcd changes on the way (4 then 2: IPVS ends at cw 1).
func (s *wrr) Update(dests []Dest) {
	var g, maxW int32
	for i := range dests {
		w := dests[i].Weight
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		maxW = max(maxW, w)
	}
	if g == 0 {
		g = 1
	}
	s.cl = -1
	s.di = g
	s.mw = maxW - (g - 1)
	if s.cw > s.mw || s.cw == 0 {
		s.cw = s.mw
	} else if s.di > 1 {
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

// Schedule is ip_vs_wrr_schedule, including how it gives up: it stops
// after every destination was checked for weight >= 1 once, starting from
// the one after the last pick. On failure the position is left where the
// walk stopped, as mark->cl is.
func (s *wrr) Schedule(dests []Dest, _ *Packet) int {
	if s.mw == 0 {
		return -1
	}
	pos := min(s.cl, len(dests)-1)
	last := pos
	stop := -2 // none
	lastPass, restarted := false, false
	for {
		for i := pos + 1; i < len(dests); i++ {
			if d := &dests[i]; !d.overloaded() && d.Weight >= s.cw {
				s.cl = i
				return i
			}
			if i == stop {
				s.cl = i
				return -1
			}
		}
		pos = -1 // the walk ended on the list head
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			if lastPass || last == -1 {
				s.cl = -1
				return -1
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			stop = last
		}
	}
}
