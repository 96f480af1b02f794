package sched

// Connection thresholds (ipvsadm -x upper, -y lower) as IPVS applies them.
// The kernel sets and clears IP_VS_DEST_F_OVERLOAD at three places only,
// and each helper here is one of them; the owner of the Dest calls them,
// after changing Conns, with whatever serialises its writes to Flags.
//
// Totals are ip_vs_dest_totalconns (active + inactive; persistent templates
// do not count). Comparisons are done in uint32, as the kernel compares its
// int total with the u32 thresholds.

// OverloadOnBind is the check at the end of ip_vs_bind_dest, after a new
// connection was counted against d: it sets DestOverload once the total
// reaches a non-zero upper threshold, and never clears it.
func OverloadOnBind(d *Dest) {
	if d.UThreshold != 0 && uint32(totalConns(d)) >= d.UThreshold {
		d.Flags |= DestOverload
	}
}

// OverloadOnUnbind is the check at the end of ip_vs_unbind_dest, after a
// connection was uncounted: with a lower threshold, DestOverload clears
// once the total falls below it; without one but with an upper threshold,
// once the total falls below three quarters of the upper one (total*4 <
// upper*3); with no thresholds at all it clears unconditionally. It never
// sets the flag.
func OverloadOnUnbind(d *Dest) {
	total := uint32(totalConns(d))
	switch {
	case d.LThreshold != 0:
		if total < d.LThreshold {
			d.Flags &^= DestOverload
		}
	case d.UThreshold != 0:
		if total*4 < d.UThreshold*3 {
			d.Flags &^= DestOverload
		}
	default:
		d.Flags &^= DestOverload
	}
}

// SetThresholds is what __ip_vs_update_dest does when a destination is
// added or edited: it marks it available, clears DestOverload when the new
// upper threshold is zero or higher than the old one, and stores both
// thresholds. A lowered upper threshold leaves the flag alone until the
// next bind or unbind.
func SetThresholds(d *Dest, upper, lower uint32) {
	d.Flags |= DestAvailable
	if upper == 0 || upper > d.UThreshold {
		d.Flags &^= DestOverload
	}
	d.UThreshold = upper
	d.LThreshold = lower
}
