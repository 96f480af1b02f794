package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// pair returns two instances, VI_A (VRID 1) and VI_B (VRID 2), in one
// sync group; edit, if not nil, changes VI_A's configuration.
func pair(t *testing.T, edit ...func(*Config)) (a, b *Instance, g *Group) {
	t.Helper()
	ca, cb := v3Config(), v3Config()
	ca.Name, ca.VRID = "VI_A", 1
	cb.Name, cb.VRID = "VI_B", 2
	cb.VIPs = []netip.Addr{vip2}
	for _, e := range edit {
		e(&ca)
	}
	a, b = newInst(t, ca), newInst(t, cb)
	g = NewGroup("G", a, b)
	return a, b, g
}

func TestSyncGroupMovesToMasterTogether(t *testing.T) {
	a, b, g := pair(t)
	if g.Name() != "G" || len(g.Members()) != 2 || a.Group() != g {
		t.Fatalf("group %q members %d", g.Name(), len(g.Members()))
	}
	wantActs(t, "Start A", a.Start(t0), "VI_A:become_backup")
	// B starts later, so its timer runs out after A's.
	wantActs(t, "Start B", b.Start(at(50*time.Millisecond)), "VI_B:become_backup")
	// A's timer runs out first but B's has not: A waits for it.
	wantActs(t, "Tick A", a.Tick(a.Deadline()), "")
	if !a.Deadline().Equal(b.Deadline()) {
		t.Errorf("A waits until %v, want B's %v", a.Deadline().Sub(t0), b.Deadline().Sub(t0))
	}
	wantActs(t, "Tick A again", a.Tick(a.Deadline()), "VI_A:send_advert(100) VI_A:become_master VI_B:send_advert(100) VI_B:become_master")
	wantState(t, b, StateMaster)
	wantActs(t, "Tick B", b.Tick(b.Deadline()), "VI_B:send_advert(100)")
}

func bothMaster(t *testing.T) (a, b *Instance, now time.Time) {
	t.Helper()
	a, b, _ = pair(t)
	a.Start(t0)
	b.Start(t0)
	now = a.Deadline()
	a.Tick(now)
	wantState(t, a, StateMaster)
	wantState(t, b, StateMaster)
	return a, b, now
}

func TestSyncGroupMovesToBackupTogether(t *testing.T) {
	a, b, now := bothMaster(t)
	acts, r := a.Receive(now, peerIP, advertFor(a, 200))
	if r != ReasonOK {
		t.Errorf("reason %v", r)
	}
	wantActs(t, "A sees higher priority", acts, "VI_A:become_backup VI_B:become_backup")
	wantState(t, b, StateBackup)
	if !b.Deadline().Equal(now.Add(mdi100)) {
		t.Errorf("B's Master_Down_Timer %v, want a normal MDI", b.Deadline().Sub(now))
	}
}

// TestSyncGroupDoesNotFlap: B was forced to BACKUP and hears no master of
// its own, so its Master_Down_Timer runs out; while A still hears a
// higher-priority master the group must stay BACKUP as a whole.
func TestSyncGroupDoesNotFlap(t *testing.T) {
	a, b, start := bothMaster(t)
	higher := advertFor(a, 200)
	a.Receive(start, peerIP, higher)
	step := 62500 * time.Nanosecond
	end := start.Add(5 * time.Second)
	var log []string
	for now := start; now.Before(end); now = now.Add(step) {
		if now.Sub(start)%(100*time.Millisecond) == 0 {
			acts, _ := a.Receive(now, peerIP, higher)
			log = append(log, show(acts))
		}
		log = append(log, show(a.Tick(now)), show(b.Tick(now)))
	}
	if s := strings.Join(log, ""); s != "" {
		t.Errorf("group moved while A hears a higher-priority master: %q", s)
	}
	wantState(t, a, StateBackup)
	wantState(t, b, StateBackup)

	// The master goes silent: the group takes over together, once, when
	// A's timer (the later) runs out.
	silent := end
	wantAt := a.Deadline().Sub(t0).String()
	var got []string
	for now := silent; now.Before(silent.Add(time.Second)); now = now.Add(step) {
		for _, acts := range [][]Action{a.Tick(now), b.Tick(now)} {
			for _, act := range acts {
				if act.Kind == ActBecomeMaster {
					got = append(got, act.Inst.Config().Name+"@"+now.Sub(t0).String())
				}
			}
		}
	}
	if want := "VI_A@" + wantAt + " VI_B@" + wantAt; strings.Join(got, " ") != want && strings.Join(got, " ") != "VI_B@"+wantAt+" VI_A@"+wantAt {
		t.Errorf("takeover %v, want both at %s", got, wantAt)
	}
}

func TestSyncGroupFaultTogether(t *testing.T) {
	a, b, now := bothMaster(t)
	wantActs(t, "A fails", a.SetFault(now, true), "VI_A:send_advert(0) VI_A:become_fault VI_B:send_advert(0) VI_B:become_fault")
	wantActs(t, "B fails too", b.SetFault(now, true), "")
	wantActs(t, "A recovers, B still failed", a.SetFault(now, false), "")
	wantState(t, a, StateFault)
	later := now.Add(time.Second)
	wantActs(t, "B recovers", b.SetFault(later, false), "VI_B:become_backup VI_A:become_backup")
	if !a.Deadline().Equal(later.Add(mdi100)) || !b.Deadline().Equal(later.Add(mdi100)) {
		t.Errorf("deadlines %v %v, want fresh MDI", a.Deadline().Sub(later), b.Deadline().Sub(later))
	}
}

func TestSyncGroupFaultBeforeStart(t *testing.T) {
	a, b, _ := pair(t)
	wantActs(t, "Start A", a.Start(t0), "VI_A:become_backup")
	wantActs(t, "B fails before Start", b.SetFault(t0, true), "VI_A:become_fault")
	wantActs(t, "Start B", b.Start(t0), "VI_B:become_fault")
	wantActs(t, "B recovers", b.SetFault(t0, false), "VI_B:become_backup VI_A:become_backup")
}

func TestSyncGroupOwnerPullsLaterMembers(t *testing.T) {
	a, b, _ := pair(t, func(c *Config) { c.Priority = 255 })
	wantActs(t, "Start owner", a.Start(t0), "VI_A:send_advert(255) VI_A:become_master")
	wantActs(t, "Start B", b.Start(t0), "VI_B:send_advert(100) VI_B:become_master")
}

func TestNewGroupPanicsOnSecondGroup(t *testing.T) {
	a, _, _ := pair(t)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "at most one group") {
			t.Errorf("recover() = %v", r)
		}
	}()
	NewGroup("H", a)
}
