package sched

import "testing"

// loadCase is one service state and the pick IPVS makes for it.
type loadCase struct {
	name     string
	weights  []int32
	active   []int32
	inactive []int32 // nil: all zero
	overload []int
	want     int
}

func runLoadCases(t *testing.T, sched string, cases []loadCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := dests(tc.weights...)
			for i := range ds {
				var in int32
				if tc.inactive != nil {
					in = tc.inactive[i]
				}
				setConns(&ds[i], tc.active[i], in)
			}
			for _, i := range tc.overload {
				ds[i].Flags |= DestOverload
			}
			s := newSched(t, sched, 0)
			s.Update(ds)
			// Stateless: the same state gives the same pick every time.
			for range 3 {
				if got := s.Schedule(ds, nil); got != tc.want {
					t.Fatalf("%s picked %d, want %d", sched, got, tc.want)
				}
			}
		})
	}
}

// lc: lowest active*256 + inactive; weights only matter as 0 / not 0.
func TestLC(t *testing.T) {
	runLoadCases(t, "lc", []loadCase{
		{"tie goes to the first", []int32{1, 1, 1}, []int32{1, 0, 0}, []int32{0, 300, 256}, nil, 0},
		{"overloaded skipped", []int32{1, 1, 1}, []int32{1, 0, 0}, []int32{0, 300, 256}, []int{0}, 2},
		{"weight 0 skipped", []int32{0, 1, 1}, []int32{0, 0, 0}, []int32{0, 300, 256}, nil, 2},
		{"weights ignored", []int32{1, 100}, []int32{0, 0}, []int32{10, 5}, nil, 1},
		{"one active outweighs 255 inactive", []int32{1, 1}, []int32{1, 0}, []int32{0, 255}, nil, 1},
		{"none", []int32{0, 0}, []int32{0, 0}, nil, nil, -1},
	})
}

// wlc: lowest overhead/weight by cross products; strict, so ties go first.
func TestWLC(t *testing.T) {
	runLoadCases(t, "wlc", []loadCase{
		{"weighted", []int32{1, 2}, []int32{1, 1}, []int32{0, 200}, nil, 1}, // 256*2 > 456*1
		{"exact tie", []int32{1, 2}, []int32{1, 2}, nil, nil, 0},            // 256*2 == 512*1
		{"first overloaded", []int32{1, 1, 1}, []int32{0, 1, 2}, nil, []int{0}, 1},
		{"weight 0 never wins", []int32{1, 0, 1}, []int32{1, 0, 0}, []int32{0, 0, 10}, nil, 2},
		{"weight 0 first", []int32{0, 1}, []int32{0, 5}, nil, nil, 1},
		{"none", []int32{1, 1}, []int32{0, 0}, nil, []int{0, 1}, -1},
	})
}

// sed: lowest (active+1)/weight; inactive connections do not count.
func TestSED(t *testing.T) {
	runLoadCases(t, "sed", []loadCase{
		{"tie goes to the first", []int32{1, 3}, []int32{0, 2}, nil, nil, 0}, // 1/1 == 3/3
		{"weighted", []int32{1, 3}, []int32{1, 2}, nil, nil, 1},              // 2/1 > 3/3
		{"inactive ignored", []int32{1, 1}, []int32{0, 0}, []int32{1000, 0}, nil, 0},
		{"overloaded skipped", []int32{1, 3}, []int32{0, 2}, nil, []int{0}, 1},
		{"weight 0 skipped", []int32{0, 3}, []int32{0, 9}, nil, nil, 1},
	})
}

// nq: the first idle destination in list order wins outright, else sed.
func TestNQ(t *testing.T) {
	runLoadCases(t, "nq", []loadCase{
		{"idle wins whatever its weight", []int32{1, 10}, []int32{0, 5}, nil, nil, 0},
		{"first idle in list order", []int32{10, 1, 1}, []int32{5, 0, 0}, nil, nil, 1},
		{"no idle: sed", []int32{1, 3}, []int32{1, 2}, nil, nil, 1},
		{"no idle: sed tie", []int32{1, 3}, []int32{2, 8}, nil, nil, 0}, // 3/1 == 9/3
		{"idle overloaded skipped", []int32{1, 1, 1}, []int32{0, 3, 0}, nil, []int{0}, 2},
		{"idle weight 0 skipped", []int32{0, 1}, []int32{0, 4}, nil, nil, 1},
		{"inactive ignored", []int32{1, 1}, []int32{0, 0}, []int32{500, 0}, nil, 0},
	})
}

func TestFO(t *testing.T) {
	runLoadCases(t, "fo", []loadCase{
		{"first highest", []int32{1, 5, 5, 3}, []int32{0, 0, 0, 0}, nil, nil, 1},
		{"overloaded skipped", []int32{1, 5, 5, 3}, []int32{0, 0, 0, 0}, nil, []int{1}, 2},
		{"connections ignored", []int32{1, 5}, []int32{0, 1000}, nil, nil, 1},
		{"weight 0 never", []int32{0, 0}, []int32{0, 0}, nil, nil, -1},
	})
}

func TestOVF(t *testing.T) {
	runLoadCases(t, "ovf", []loadCase{
		{"heaviest while active <= weight", []int32{5, 10, 3}, []int32{0, 10, 0}, nil, nil, 1},
		{"overflows to the next weight", []int32{5, 10, 3}, []int32{0, 11, 0}, nil, nil, 0},
		{"tie goes to the first", []int32{5, 5}, []int32{6, 0}, nil, nil, 1},
		{"overloaded skipped", []int32{5, 10, 3}, []int32{0, 0, 0}, nil, []int{1}, 0},
		{"inactive ignored", []int32{2}, []int32{2}, []int32{100}, nil, 0},
		{"all over", []int32{1, 1}, []int32{2, 2}, nil, nil, -1},
		{"weight 0 never", []int32{0}, []int32{0}, nil, nil, -1},
	})
}
