package daemon

import (
	"testing"

	"github.com/uvs-project/uvs/config"
)

// TestTrackEffect is keepalived's rule for a tracked interface or script.
func TestTrackEffect(t *testing.T) {
	for _, tc := range []struct {
		weight  int
		reverse bool
		up      bool
		fault   bool
		delta   int
	}{
		{0, false, true, false, 0},
		{0, false, false, true, 0},
		{0, true, true, true, 0},
		{10, false, true, false, 10},
		{10, false, false, false, 0},
		{-20, false, false, false, -20},
		{-20, false, true, false, 0},
		{-20, true, true, false, -20},
	} {
		f, d := trackEffect(config.Track{Weight: tc.weight, Reverse: tc.reverse}, tc.up)
		if f != tc.fault || d != tc.delta {
			t.Errorf("weight %d reverse %v up %v: fault %v delta %d, want %v %d", tc.weight, tc.reverse, tc.up, f, d, tc.fault, tc.delta)
		}
	}
}
