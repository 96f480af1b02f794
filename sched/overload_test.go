package sched

import "testing"

// step changes d's connection total by delta, one bind or unbind at a time,
// applying the kernel's check after each.
func step(d *Dest, delta int) {
	for ; delta > 0; delta-- {
		d.Conns.Active.Add(1)
		OverloadOnBind(d)
	}
	for ; delta < 0; delta++ {
		d.Conns.Active.Add(-1)
		OverloadOnUnbind(d)
	}
}

func TestOverloadThresholds(t *testing.T) {
	type check struct {
		delta    int // connections bound (+) or unbound (-)
		overload bool
	}
	tests := []struct {
		name         string
		upper, lower uint32
		steps        []check
	}{
		{"upper and lower", 10, 5, []check{
			{9, false}, {1, true}, // set on reaching 10
			{-1, true}, {-4, true}, // 9..5: stays
			{-1, false}, // 4 < 5: clears
			{5, false}, {1, true},
		}},
		// No lower threshold: clears below 3/4 of upper (total*4 < 30).
		{"upper only", 10, 0, []check{
			{10, true}, {-2, true}, // 8*4 = 32
			{-1, false}, // 7*4 = 28
		}},
		// Rounding: upper 2 clears at 1 (4 < 6).
		{"upper 2", 2, 0, []check{{2, true}, {-1, false}}},
		{"none", 0, 0, []check{{1000, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dests(1)[0]
			SetThresholds(&d, tt.upper, tt.lower)
			for i, c := range tt.steps {
				step(&d, c.delta)
				if got := d.Flags&DestOverload != 0; got != c.overload {
					t.Fatalf("step %d (total %d): overload %v, want %v", i, totalConns(&d), got, c.overload)
				}
			}
		})
	}
}

// TestOverloadCounts: inactive connections count, persistent templates do
// not (ip_vs_dest_totalconns).
func TestOverloadCounts(t *testing.T) {
	d := dests(1)[0]
	SetThresholds(&d, 3, 0)
	d.Conns.Persist.Store(100)
	d.Conns.Inactive.Store(2)
	OverloadOnBind(&d)
	if d.overloaded() {
		t.Fatal("templates counted")
	}
	d.Conns.Active.Store(1)
	OverloadOnBind(&d)
	if !d.overloaded() {
		t.Fatal("inactive not counted")
	}
}

// TestSetThresholds: an edit clears the flag when the upper threshold is
// removed or raised, and keeps it when lowered or unchanged.
func TestSetThresholds(t *testing.T) {
	for _, tc := range []struct {
		upper uint32
		keep  bool
	}{{0, false}, {11, false}, {10, true}, {5, true}} {
		d := dests(1)[0]
		SetThresholds(&d, 10, 0)
		d.Flags |= DestOverload
		SetThresholds(&d, tc.upper, 0)
		if d.overloaded() != tc.keep {
			t.Errorf("upper 10 -> %d: overload %v, want %v", tc.upper, d.overloaded(), tc.keep)
		}
		if !d.available() || d.UThreshold != tc.upper {
			t.Errorf("upper 10 -> %d: flags %b threshold %d", tc.upper, d.Flags, d.UThreshold)
		}
	}
	// With no thresholds an unbind clears a stale flag.
	d := dests(1)[0]
	d.Flags |= DestOverload
	OverloadOnUnbind(&d)
	if d.overloaded() {
		t.Error("unbind without thresholds kept the flag")
	}
}
