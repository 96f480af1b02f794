package vrrp

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Unix(0, 0)
	localIP = netip.MustParseAddr("10.0.0.2")
	peerIP  = netip.MustParseAddr("10.0.0.3") // greater than localIP
	lowIP   = netip.MustParseAddr("10.0.0.1")
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// v3Config is the reference instance: VRRPv3, advert_int 100ms, priority
// 100, so Skew_Time = 156 × 100ms / 256 = 60.9375ms and
// Master_Down_Interval = 360.9375ms.
func v3Config() Config {
	return Config{Name: "VI_1", VRID: 51, Priority: 100, AdvertInt: 100 * time.Millisecond, Version: 3, LocalIP: localIP, VIPs: []netip.Addr{vip1}}
}

func v2Config() Config {
	c := v3Config()
	c.Version, c.AdvertInt, c.AuthPass = 2, time.Second, "secret"
	return c
}

const mdi100 = 360937500 * time.Nanosecond

func newInst(t *testing.T, cfg Config) *Instance {
	t.Helper()
	i, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// advertFor returns an advert for i's VRID and settings from a peer with
// priority prio.
func advertFor(i *Instance, prio uint8) *Advert {
	a := &Advert{}
	i.Advert(a, prio)
	return a
}

// show writes actions as "name:kind(prio)" for comparison.
func show(acts []Action) string {
	s := make([]string, len(acts))
	for n, a := range acts {
		s[n] = a.Inst.Config().Name + ":" + a.Kind.String()
		if a.Kind == ActSendAdvert {
			s[n] += fmt.Sprintf("(%d)", a.Priority)
		}
	}
	return strings.Join(s, " ")
}

func wantActs(t *testing.T, what string, got []Action, want string) {
	t.Helper()
	if s := show(got); s != want {
		t.Errorf("%s: actions %q, want %q", what, s, want)
	}
}

func wantState(t *testing.T, i *Instance, want State) {
	t.Helper()
	if got := i.State(); got != want {
		t.Errorf("%s: state %v, want %v", i.Config().Name, got, want)
	}
}

func TestStartBackupToMasterAfterExactlyMasterDownIntervalRFC5798(t *testing.T) {
	i := newInst(t, v3Config())
	wantActs(t, "Start", i.Start(t0), "VI_1:become_backup")
	wantState(t, i, StateBackup)
	if got := i.Deadline(); !got.Equal(at(mdi100)) {
		t.Fatalf("Deadline = %v, want t0+%v (3 × 100ms + 60.9375ms)", got.Sub(t0), mdi100)
	}
	wantActs(t, "Tick 1ns early", i.Tick(at(mdi100-1)), "")
	wantActs(t, "Tick", i.Tick(at(mdi100)), "VI_1:send_advert(100) VI_1:become_master")
	wantState(t, i, StateMaster)
	if got := i.Deadline(); !got.Equal(at(mdi100 + 100*time.Millisecond)) {
		t.Errorf("Adver_Timer = %v, want MDI + 100ms", got.Sub(t0))
	}
	wantActs(t, "Adver_Timer", i.Tick(i.Deadline()), "VI_1:send_advert(100)")
	if i.MasterIP().IsValid() {
		t.Errorf("MasterIP = %v while master, want zero", i.MasterIP())
	}
}

func TestSkewTimeV2IsWholeSecondsRFC3768(t *testing.T) {
	i := newInst(t, v2Config())
	i.Start(t0)
	// 3 × 1s + (256-100)/256 s
	if want := at(3*time.Second + 609375*time.Microsecond); !i.Deadline().Equal(want) {
		t.Errorf("Deadline = %v, want %v", i.Deadline().Sub(t0), want.Sub(t0))
	}
}

func TestStartPriority255MasterAtOnce(t *testing.T) {
	c := v3Config()
	c.Priority = 255
	i := newInst(t, c)
	wantActs(t, "Start", i.Start(t0), "VI_1:send_advert(255) VI_1:become_master")
	if !i.Deadline().Equal(at(100 * time.Millisecond)) {
		t.Errorf("Adver_Timer = %v, want 100ms", i.Deadline().Sub(t0))
	}
	wantActs(t, "second Start", i.Start(t0), "")
}

func TestWantMasterBelow255StartsBackupLikeKeepalived(t *testing.T) {
	c := v3Config()
	c.WantMaster, c.NoPreempt = true, true
	i := newInst(t, c)
	wantActs(t, "Start", i.Start(t0), "VI_1:become_backup")
	if !i.Deadline().Equal(at(mdi100)) {
		t.Errorf("Deadline = %v, want full MDI", i.Deadline().Sub(t0))
	}
	// nopreempt needs initial state BACKUP in keepalived; with MASTER it
	// is cleared, so a lower-priority master is preempted.
	i.Receive(at(10*time.Millisecond), peerIP, advertFor(i, 50))
	wantActs(t, "Tick", i.Tick(at(mdi100)), "VI_1:send_advert(100) VI_1:become_master")
}

func TestBackupSeesHigherPriorityMasterAndStays(t *testing.T) {
	i := newInst(t, v3Config())
	i.Start(t0)
	a := advertFor(i, 200)
	a.AdvertInt = 200 * time.Millisecond // v3 learns the master's interval
	var now time.Time
	for d := 100 * time.Millisecond; d <= 3*time.Second; d += 100 * time.Millisecond {
		now = at(d)
		wantActs(t, "Tick", i.Tick(now), "")
		acts, r := i.Receive(now, peerIP, a)
		if r != ReasonOK || len(acts) != 0 {
			t.Fatalf("Receive = %q %v", show(acts), r)
		}
	}
	wantState(t, i, StateBackup)
	if i.MasterIP() != peerIP || i.MasterAdverInt() != 200*time.Millisecond {
		t.Errorf("MasterIP %v MasterAdverInt %v, want %v 200ms", i.MasterIP(), i.MasterAdverInt(), peerIP)
	}
	// 3 × 200ms + 156 × 200ms / 256
	if want := now.Add(600*time.Millisecond + 121875*time.Microsecond); !i.Deadline().Equal(want) {
		t.Errorf("Deadline = %v after last advert, want %v", i.Deadline().Sub(now), want.Sub(now))
	}
}

func TestBackupEqualPriorityResetsTimerRFC5798(t *testing.T) {
	i := newInst(t, v3Config())
	i.Start(t0)
	i.Receive(at(300*time.Millisecond), lowIP, advertFor(i, 100))
	if want := at(300*time.Millisecond + mdi100); !i.Deadline().Equal(want) {
		t.Errorf("Deadline = %v, want %v", i.Deadline().Sub(t0), want.Sub(t0))
	}
}

// feedLower sends i a priority-50 advert every 100ms from 100ms to end and
// ticks it every 62.5µs; it returns the time i became MASTER, or the
// zero Time.
func feedLower(t *testing.T, i *Instance, end time.Duration, during func(time.Time)) time.Time {
	t.Helper()
	a := advertFor(i, 50)
	for d := time.Duration(0); d <= end; d += 62500 * time.Nanosecond { // divides 0.9375ms
		now := at(d)
		if during != nil {
			during(now)
		}
		if d > 0 && d%(100*time.Millisecond) == 0 && i.State() == StateBackup {
			i.Receive(now, peerIP, a)
		}
		for _, act := range i.Tick(now) {
			if act.Kind == ActBecomeMaster {
				return now
			}
		}
	}
	return time.Time{}
}

func TestPreemptLowerPriorityMasterAfterMasterDownIntervalRFC5798(t *testing.T) {
	i := newInst(t, v3Config())
	i.Start(t0)
	got := feedLower(t, i, 2*time.Second, nil)
	if want := at(mdi100); !got.Equal(want) {
		t.Errorf("became master at %v, want %v (adverts of lower priority are discarded)", got.Sub(t0), mdi100)
	}
}

func TestNoPreemptStaysBackup(t *testing.T) {
	c := v3Config()
	c.NoPreempt = true
	i := newInst(t, c)
	i.Start(t0)
	if got := feedLower(t, i, 3*time.Second, nil); !got.IsZero() {
		t.Errorf("nopreempt instance became master at %v", got.Sub(t0))
	}
	wantState(t, i, StateBackup)
}

func TestPreemptDelayAfterStart(t *testing.T) {
	c := v3Config()
	c.PreemptDelay = time.Second
	i := newInst(t, c)
	i.Start(t0)
	// Adverts up to 900ms are accepted; from 1s on they are discarded,
	// so the timer set at 900ms runs out.
	got := feedLower(t, i, 3*time.Second, nil)
	if want := at(900*time.Millisecond + mdi100); !got.Equal(want) {
		t.Errorf("became master at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}

func TestHoldPreempt(t *testing.T) {
	i := newInst(t, v3Config())
	i.HoldPreempt(true)
	i.Start(t0)
	release := at(2 * time.Second)
	got := feedLower(t, i, 4*time.Second, func(now time.Time) {
		if now.Equal(release) {
			i.HoldPreempt(false)
		}
	})
	// The advert at 2s arrives after the release (feedLower calls during
	// first) and is discarded; the one at 1.9s set the timer.
	if want := at(1900*time.Millisecond + mdi100); !got.Equal(want) {
		t.Errorf("became master at %v, want %v", got.Sub(t0), want.Sub(t0))
	}
}

func TestPriorityZeroAdvertTakeoverAfterSkewTimeRFC5798(t *testing.T) {
	i := newInst(t, v3Config())
	i.Start(t0)
	i.Receive(at(50*time.Millisecond), peerIP, advertFor(i, 200))
	acts, r := i.Receive(at(120*time.Millisecond), peerIP, advertFor(i, 0))
	if r != ReasonOK || len(acts) != 0 {
		t.Fatalf("Receive = %q %v", show(acts), r)
	}
	skew := 60937500 * time.Nanosecond
	if want := at(120*time.Millisecond + skew); !i.Deadline().Equal(want) {
		t.Fatalf("Deadline = %v, want %v", i.Deadline().Sub(t0), want.Sub(t0))
	}
	wantActs(t, "Tick", i.Tick(i.Deadline()), "VI_1:send_advert(100) VI_1:become_master")
}

// master returns a started instance of cfg that has become MASTER at MDI.
func master(t *testing.T, cfg Config) (*Instance, time.Time) {
	t.Helper()
	i := newInst(t, cfg)
	i.Start(t0)
	now := i.Deadline()
	i.Tick(now)
	wantState(t, i, StateMaster)
	return i, now
}

func TestMasterReceiveRFC5798(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      netip.Addr
		prio     uint8
		want     string
		wantSt   State
		interval time.Duration
	}{
		{"yields to higher priority", lowIP, 101, "VI_1:become_backup", StateBackup, 0},
		{"yields to equal priority with higher IP", peerIP, 100, "VI_1:become_backup", StateBackup, 0},
		{"higher IP compares as unsigned 32-bit", netip.MustParseAddr("200.0.0.1"), 100, "VI_1:become_backup", StateBackup, 0},
		{"keeps master against equal priority with lower IP", lowIP, 100, "", StateMaster, 0},
		{"discards lower priority", peerIP, 99, "", StateMaster, 0},
		{"priority 0 sends an advert now", peerIP, 0, "VI_1:send_advert(100)", StateMaster, 0},
		{"learns the new master's interval", peerIP, 200, "VI_1:become_backup", StateBackup, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, now := master(t, v3Config())
			now = now.Add(30 * time.Millisecond)
			a := advertFor(i, tc.prio)
			if tc.interval != 0 {
				a.AdvertInt = tc.interval
			}
			acts, r := i.Receive(now, tc.src, a)
			if r != ReasonOK {
				t.Errorf("reason %v", r)
			}
			wantActs(t, "Receive", acts, tc.want)
			wantState(t, i, tc.wantSt)
			var want time.Time
			switch {
			case tc.wantSt == StateMaster && tc.prio == 0:
				want = now.Add(100 * time.Millisecond) // Adver_Timer reset
			case tc.wantSt == StateMaster:
				want = now.Add(70 * time.Millisecond) // untouched
			case tc.interval != 0:
				want = now.Add(3*time.Second + 156*time.Second/256)
				if i.MasterIP() != tc.src {
					t.Errorf("MasterIP = %v, want %v", i.MasterIP(), tc.src)
				}
			default:
				want = now.Add(mdi100)
			}
			if !i.Deadline().Equal(want) {
				t.Errorf("Deadline = %v, want %v", i.Deadline().Sub(now), want.Sub(now))
			}
		})
	}
}

func TestMasterStopSendsPriorityZeroRFC5798(t *testing.T) {
	i, now := master(t, v3Config())
	wantActs(t, "Stop", i.Stop(now), "VI_1:send_advert(0) VI_1:stop")
	wantState(t, i, StateInit)
	if !i.Deadline().IsZero() {
		t.Errorf("Deadline = %v after Stop, want zero", i.Deadline())
	}
	wantActs(t, "second Stop", i.Stop(now), "")

	b := newInst(t, v3Config())
	b.Start(t0)
	wantActs(t, "backup Stop", b.Stop(t0), "VI_1:stop")
	// A stopped instance can start again.
	wantActs(t, "restart", b.Start(at(time.Second)), "VI_1:become_backup")
}

func TestFaultAndRecovery(t *testing.T) {
	i, now := master(t, v3Config())
	wantActs(t, "SetFault", i.SetFault(now, true), "VI_1:send_advert(0) VI_1:become_fault")
	wantState(t, i, StateFault)
	if !i.Deadline().IsZero() {
		t.Errorf("Deadline = %v in FAULT, want zero", i.Deadline())
	}
	wantActs(t, "SetFault again", i.SetFault(now, true), "")
	wantActs(t, "Tick in FAULT", i.Tick(now.Add(time.Hour)), "")
	if acts, _ := i.Receive(now, peerIP, advertFor(i, 0)); len(acts) != 0 {
		t.Errorf("Receive in FAULT = %q", show(acts))
	}
	later := now.Add(time.Second)
	wantActs(t, "recover", i.SetFault(later, false), "VI_1:become_backup")
	if !i.Deadline().Equal(later.Add(mdi100)) {
		t.Errorf("Deadline = %v after recovery, want fresh MDI", i.Deadline().Sub(later))
	}

	b := newInst(t, v3Config())
	wantActs(t, "SetFault before Start", b.SetFault(t0, true), "")
	wantActs(t, "Start with a fault", b.Start(t0), "VI_1:become_fault")
	wantActs(t, "backup recovers", b.SetFault(t0, false), "VI_1:become_backup")
}

func TestPriorityDelta(t *testing.T) {
	i, now := master(t, v3Config())
	wantActs(t, "delta -60", i.SetPriorityDelta(now, -60), "VI_1:send_advert(40)")
	if !i.Deadline().Equal(now.Add(100 * time.Millisecond)) {
		t.Errorf("Adver_Timer not reset: %v", i.Deadline().Sub(now))
	}
	wantActs(t, "same delta", i.SetPriorityDelta(now, -60), "")
	wantActs(t, "delta +200 clamps to 254", i.SetPriorityDelta(now, 200), "VI_1:send_advert(254)")
	wantActs(t, "delta -200 clamps to 1", i.SetPriorityDelta(now, -200), "VI_1:send_advert(1)")
	wantActs(t, "Tick", i.Tick(i.Deadline()), "VI_1:send_advert(1)")
	// Now a priority-50 backup's adverts win.
	acts, _ := i.Receive(now, lowIP, advertFor(i, 50))
	wantActs(t, "Receive", acts, "VI_1:become_backup")

	c := v3Config()
	c.Priority = 255
	o := newInst(t, c)
	o.Start(t0)
	wantActs(t, "owner delta", o.SetPriorityDelta(t0, -100), "")
	if o.Priority() != 255 {
		t.Errorf("owner priority %d, want 255", o.Priority())
	}

	b := newInst(t, v3Config())
	b.Start(t0)
	wantActs(t, "backup delta", b.SetPriorityDelta(t0, 100), "")
	if b.Priority() != 200 {
		t.Errorf("backup priority %d, want 200", b.Priority())
	}
	// Skew_Time follows the effective priority: (256-200) × 100ms / 256.
	b.Receive(t0, peerIP, advertFor(b, 0))
	if want := at(21875 * time.Microsecond); !b.Deadline().Equal(want) {
		t.Errorf("Skew_Time deadline %v, want %v", b.Deadline().Sub(t0), want.Sub(t0))
	}
}

func TestReceiveDrops(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		edit func(*Advert)
		want Reason
	}{
		{"v2 ok", v2Config(), func(*Advert) {}, ReasonOK},
		{"v2 interval mismatch RFC 3768 7.1", v2Config(), func(a *Advert) { a.AdvertInt = 2 * time.Second }, ReasonInterval},
		{"v2 auth type mismatch", v2Config(), func(a *Advert) { a.AuthType = AuthNone }, ReasonAuth},
		{"v2 password mismatch", v2Config(), func(a *Advert) { a.AuthData[0] = 'S' }, ReasonAuth},
		{"v2 password sent to no-auth instance", func() Config { c := v2Config(); c.AuthPass = ""; return c }(),
			func(a *Advert) { a.AuthType, a.AuthData = AuthPass, pass8 }, ReasonAuth},
		{"v3 ignores auth fields", v3Config(), func(a *Advert) { a.AuthType = 7 }, ReasonOK},
		{"v3 interval differs, accepted", v3Config(), func(a *Advert) { a.AdvertInt = time.Second }, ReasonOK},
		{"v3 zero interval", v3Config(), func(a *Advert) { a.AdvertInt = 0 }, ReasonInterval},
		{"wrong VRID", v3Config(), func(a *Advert) { a.VRID++ }, ReasonVRID},
		{"wrong version", v3Config(), func(a *Advert) { a.Version = 2 }, ReasonVersion},
		{"address list differs", v3Config(), func(a *Advert) { a.Addrs = []netip.Addr{vip2} }, ReasonAddrs},
		{"extra address", v3Config(), func(a *Advert) { a.Addrs = append(a.Addrs, vip2) }, ReasonAddrs},
		{"duplicate address", func() Config { c := v3Config(); c.VIPs = []netip.Addr{vip1, vip2}; return c }(),
			func(a *Advert) { a.Addrs = []netip.Addr{vip1, vip1} }, ReasonAddrs},
		{"same addresses reordered", func() Config { c := v3Config(); c.VIPs = []netip.Addr{vip1, vip2}; return c }(),
			func(a *Advert) { a.Addrs = []netip.Addr{vip2, vip1} }, ReasonOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := newInst(t, tc.cfg)
			i.Start(t0)
			before := i.Deadline()
			a := advertFor(i, 200)
			tc.edit(a)
			now := at(10 * time.Millisecond)
			acts, r := i.Receive(now, peerIP, a)
			if r != tc.want || len(acts) != 0 {
				t.Errorf("Receive = %q %v, want no actions, %v", show(acts), r, tc.want)
			}
			// Dropped adverts leave the timer alone; accepted ones (ok,
			// addrs) reset it.
			accepted := tc.want == ReasonOK || tc.want == ReasonAddrs
			if moved := !i.Deadline().Equal(before); moved != accepted {
				t.Errorf("timer moved %v, want %v", moved, accepted)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" for none
	}{
		{"ok v3", func(*Config) {}, ""},
		{"ok v2", func(c *Config) { c.Version, c.AdvertInt = 2, time.Second }, ""},
		{"VRID 0", func(c *Config) { c.VRID = 0 }, "virtual router ID 0"},
		{"priority 0", func(c *Config) { c.Priority = 0 }, "priority 0"},
		{"version 4", func(c *Config) { c.Version = 4 }, "version 4"},
		{"v2 fractional interval", func(c *Config) { c.Version, c.AdvertInt = 2, 1500*time.Millisecond }, "whole seconds"},
		{"v2 interval 0", func(c *Config) { c.Version, c.AdvertInt = 2, 0 }, "whole seconds"},
		{"v2 long password", func(c *Config) { c.Version, c.AdvertInt, c.AuthPass = 2, time.Second, "123456789" }, "8 bytes"},
		{"v3 interval too long", func(c *Config) { c.AdvertInt = 41 * time.Second }, "0.01s-40.95s"},
		{"v3 interval not centiseconds", func(c *Config) { c.AdvertInt = 105 * time.Millisecond }, "0.01s-40.95s"},
		{"v3 password ignored", func(c *Config) { c.AuthPass = "123456789" }, ""},
		{"IPv6 local", func(c *Config) { c.LocalIP = netip.MustParseAddr("2001:db8::1") }, "not IPv4"},
		{"no local", func(c *Config) { c.LocalIP = netip.Addr{} }, "not IPv4"},
		{"IPv6 VIP", func(c *Config) { c.VIPs = append(c.VIPs, netip.MustParseAddr("2001:db8::1")) }, "not IPv4"},
		{"too many VIPs", func(c *Config) { c.VIPs = make([]netip.Addr, 256) }, "at most 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := v3Config()
			tc.edit(&c)
			_, err := New(c)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNewCopiesVIPsAndAdvert(t *testing.T) {
	c := v2Config()
	c.VIPs = []netip.Addr{netip.AddrFrom16(vip1.As16())} // IPv4-mapped
	i := newInst(t, c)
	c.VIPs[0] = vip2
	var a Advert
	i.Advert(&a, 7)
	want := Advert{Version: 2, VRID: 51, Priority: 7, AdvertInt: time.Second, AuthType: AuthPass, AuthData: pass8, Addrs: []netip.Addr{vip1}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("Advert = %+v, want %+v", a, want)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{StateInit.String(), "INIT"}, {StateBackup.String(), "BACKUP"}, {StateMaster.String(), "MASTER"}, {StateFault.String(), "FAULT"},
		{State(9).String(), "State(9)"},
		{ActSendAdvert.String(), "send_advert"}, {ActBecomeMaster.String(), "become_master"}, {ActBecomeBackup.String(), "become_backup"},
		{ActBecomeFault.String(), "become_fault"}, {ActStop.String(), "stop"}, {ActionKind(9).String(), "ActionKind(9)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
