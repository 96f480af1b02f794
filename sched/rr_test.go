package sched

import (
	"slices"
	"testing"
)

func TestRR(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int32
		overload []int // indexes with DestOverload
		want     []int
	}{
		{"all", []int32{1, 1, 1}, nil, []int{0, 1, 2, 0, 1, 2}},
		// Weights do not matter beyond > 0.
		{"weights ignored", []int32{5, 1, 3}, nil, []int{0, 1, 2, 0}},
		{"weight 0 skipped", []int32{1, 0, 1}, nil, []int{0, 2, 0, 2}},
		{"overload skipped", []int32{1, 1, 1}, []int{1}, []int{0, 2, 0, 2}},
		{"one left", []int32{0, 1, 0}, []int{}, []int{1, 1, 1}},
		{"none", []int32{0, 1, 0}, []int{1}, []int{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dests(tt.weights...)
			for _, i := range tt.overload {
				ds[i].Flags |= DestOverload
			}
			s := newSched(t, "rr", 0)
			s.Update(ds)
			if got := picks(s, ds, nil, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Fatalf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRRUpdate follows ip_vs_rr_del_dest: removing the last pick resumes at
// its successor; other changes keep the position on the same destination.
func TestRRUpdate(t *testing.T) {
	ds := dests(1, 1, 1, 1) // A B C D
	s := newSched(t, "rr", 0)
	s.Update(ds)
	if got := picks(s, ds, nil, 2); !slices.Equal(got, []int{0, 1}) { // A B
		t.Fatalf("picks = %v", got)
	}
	// Remove B, the last pick: the walk goes on with C.
	ds2 := []Dest{ds[0], ds[2], ds[3]}
	s.Update(ds2)
	if got := picks(s, ds2, nil, 3); !slices.Equal(got, []int{1, 2, 0}) { // C D A
		t.Fatalf("after removing the last pick: %v, want [1 2 0]", got)
	}
	// Add E at the list head as IPVS does: the position stays on A, so C
	// is next and E comes when the walk wraps.
	e := dests(1, 1, 1, 1, 1)[4]
	ds3 := []Dest{e, ds[0], ds[2], ds[3]}
	s.Update(ds3)
	if got := picks(s, ds3, nil, 4); !slices.Equal(got, []int{2, 3, 0, 1}) { // C D E A
		t.Fatalf("after adding at the head: %v, want [2 3 0 1]", got)
	}
	// Remove A (last pick) and C together: the position falls back past
	// both to E, so D is next.
	ds4 := []Dest{e, ds[3]}
	s.Update(ds4)
	if got := picks(s, ds4, nil, 3); !slices.Equal(got, []int{1, 0, 1}) { // D E D
		t.Fatalf("after removing two: %v, want [1 0 1]", got)
	}
}

func TestWRR(t *testing.T) {
	const A, B, C = 0, 1, 2
	tests := []struct {
		name    string
		weights []int32
		want    []int
	}{
		// mw = 4: pass cw=4 takes A; cw=3 A B; cw=2 A B C; cw=1 A B C.
		{"4 3 2", []int32{4, 3, 2}, []int{A, A, B, A, B, C, A, B, C, A, A, B, A, B, C, A, B, C}},
		{"equal", []int32{1, 1, 1}, []int{A, B, C, A, B, C}},
		// gcd 2: mw = 6-1 = 5, passes cw = 5, 3, 1.
		{"6 4 2", []int32{6, 4, 2}, []int{A, A, B, A, B, C, A}},
		// Weight 0 never reaches cw >= 1.
		{"weight 0", []int32{2, 0, 1}, []int{A, A, C, A, A, C}},
		{"all 0", []int32{0, 0}, []int{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dests(tt.weights...)
			s := newSched(t, "wrr", 0)
			s.Update(ds)
			if got := picks(s, ds, nil, len(tt.want)); !slices.Equal(got, tt.want) {
				t.Fatalf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWRRWeightChange follows ip_vs_wrr_dest_changed. After A A B A of
// weights 4 3 2 the state is cw = 2 at A. B goes to 6: gcd 2, mw = 6-1 = 5,
// and cw, not above mw, is rounded to (2/2)*2+1 = 3, the walk restarting at
// the head. cw=3: A B; cw=1: A B C; cw=5: B; cw=3: A B; cw=1: A B C ...
func TestWRRWeightChange(t *testing.T) {
	const A, B, C = 0, 1, 2
	ds := dests(4, 3, 2)
	s := newSched(t, "wrr", 0)
	s.Update(ds)
	if got := picks(s, ds, nil, 4); !slices.Equal(got, []int{A, A, B, A}) {
		t.Fatalf("before: %v", got)
	}
	ds[B].Weight = 6
	s.Update(ds)
	want := []int{A, B, A, B, C, B, A, B, A, B, C, B}
	if got := picks(s, ds, nil, len(want)); !slices.Equal(got, want) {
		t.Fatalf("after: %v, want %v", got, want)
	}
}

// TestWRROverload: overloaded destinations are skipped; when all are, the
// scheduler gives up after one pass for weight >= 1 and recovers.
func TestWRROverload(t *testing.T) {
	const A, B, C = 0, 1, 2
	ds := dests(4, 3, 2)
	s := newSched(t, "wrr", 0)
	s.Update(ds)
	ds[A].Flags |= DestOverload
	want := []int{B, B, C, B, C}
	if got := picks(s, ds, nil, len(want)); !slices.Equal(got, want) {
		t.Fatalf("A overloaded: %v, want %v", got, want)
	}
	for i := range ds {
		ds[i].Flags |= DestOverload
	}
	if got := picks(s, ds, nil, 3); !slices.Equal(got, []int{-1, -1, -1}) {
		t.Fatalf("all overloaded: %v", got)
	}
	ds[C].Flags &^= DestOverload
	if got := picks(s, ds, nil, 3); !slices.Equal(got, []int{C, C, C}) {
		t.Fatalf("C back: %v", got)
	}
}
