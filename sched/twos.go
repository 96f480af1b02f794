package sched

import "math/rand/v2"

// twos is ip_vs_twos.c, weighted power of two choices. With T the sum of
// the weights of destinations that are not overloaded and have weight > 0,
// two numbers r1, r2 are drawn uniformly from [0, T] (T+1 values, so the
// first eligible destination has one extra chance, as in IPVS); each
// selects the first eligible destination at which the running sum of
// weights reaches it. The second choice wins only if its overhead/weight
// is strictly lower. IPVS draws with prandom_u32(); here each scheduler
// owns a seeded PCG, so sequences are reproducible but cannot match a
// kernel's.
type twos struct {
	rng rand.PCG
}

// twosSeed is the seed of a new twos scheduler; Seed changes it.
const twosSeed = 0x75767332 // "uvs2"

func init() {
	register("twos", func(Flags) Scheduler {
		s := &twos{}
		s.Seed(twosSeed)
		return s
	})
}

// Seeder is implemented by schedulers that draw random numbers (twos), so
// that each worker's instance can be given its own sequence.
type Seeder interface {
	Seed(seed uint64)
}

// Seed restarts the scheduler's random sequence.
func (s *twos) Seed(seed uint64) { s.rng.Seed(seed, seed^0x9e3779b97f4a7c15) }

func (s *twos) Update([]Dest) {}

func (s *twos) Schedule(dests []Dest, _ *Packet) int {
	var total int64
	eligible := false
	for i := range dests {
		if d := &dests[i]; !d.overloaded() && d.Weight > 0 {
			total += int64(d.Weight)
			eligible = true
		}
	}
	if !eligible {
		return -1
	}
	total++
	r1 := int64(uint32(s.rng.Uint64()>>32)) % total
	r2 := int64(uint32(s.rng.Uint64()>>32)) % total

	c1, c2 := -1, -1
	var w1, w2, oh1, oh2 int64
	for i := range dests {
		d := &dests[i]
		if d.overloaded() || d.Weight <= 0 {
			continue
		}
		w := int64(d.Weight)
		r1 -= w
		r2 -= w
		if r1 <= 0 && c1 < 0 {
			c1, w1, oh1 = i, w, int64(connOverhead(d))
		}
		if r2 <= 0 && c2 < 0 {
			c2, w2, oh2 = i, w, int64(connOverhead(d))
		}
		if c1 >= 0 && c2 >= 0 {
			break
		}
	}
	if c2 >= 0 && w2*oh1 > w1*oh2 {
		return c2
	}
	return c1
}
