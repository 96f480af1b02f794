package sched

import (
	"math"
	"slices"
	"testing"
)

// TestTwosDistribution: with no connections the second choice never wins
// (it must be strictly less loaded), so picks follow the first draw:
// weight w_i out of T+1 = 11 values, the first dest one more.
func TestTwosDistribution(t *testing.T) {
	ds := dests(1, 2, 3, 4)
	s := newSched(t, "twos", 0)
	s.Update(ds)
	counts := make([]int, len(ds))
	const n = 110000
	for range n {
		counts[s.Schedule(ds, nil)]++
	}
	for i, want := range []float64{2.0 / 11, 2.0 / 11, 3.0 / 11, 4.0 / 11} {
		if got := float64(counts[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("dest %d share %.4f, want %.4f", i, got, want)
		}
	}
}

// TestTwosLoad: of the two draws the less loaded (overhead/weight) wins,
// so a heavily loaded dest is picked only when both draws land on it.
func TestTwosLoad(t *testing.T) {
	ds := dests(1, 1)
	setConns(&ds[0], 10, 0)
	s := newSched(t, "twos", 0)
	s.Update(ds)
	counts := make([]int, 2)
	const n = 90000
	for range n {
		counts[s.Schedule(ds, nil)]++
	}
	// Draws in [0, 2]: dest 0 for 0 and 1, dest 1 for 2. Dest 0 needs both:
	// (2/3)^2 = 4/9.
	if got := float64(counts[0]) / n; math.Abs(got-4.0/9) > 0.01 {
		t.Errorf("loaded dest share %.4f, want %.4f", got, 4.0/9)
	}
	ds[1].Flags |= DestOverload
	ds = append(ds, dests(0, 0, 0)...)
	if got := picks(s, ds, nil, 5); !slices.Equal(got, []int{0, 0, 0, 0, 0}) {
		t.Errorf("only dest 0 eligible: %v", got)
	}
	ds[0].Flags |= DestOverload
	if got := s.Schedule(ds, nil); got != -1 {
		t.Errorf("none eligible: %d", got)
	}
}

// TestTwosSeed: the sequence is the seed's, per instance.
func TestTwosSeed(t *testing.T) {
	ds := dests(3, 1, 4, 1, 5, 9, 2, 6)
	seq := func(seed uint64) []int {
		s := newSched(t, "twos", 0)
		s.(Seeder).Seed(seed)
		s.Update(ds)
		return picks(s, ds, nil, 64)
	}
	if !slices.Equal(seq(1), seq(1)) {
		t.Fatal("same seed, different sequences")
	}
	if slices.Equal(seq(1), seq(2)) {
		t.Fatal("different seeds, same sequence")
	}
}
