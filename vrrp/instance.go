package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is an instance's VRRP state (RFC 5798 6.4, plus keepalived's FAULT).
type State uint8

// States.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	// StateFault: a tracked interface or script failed; the instance
	// neither advertises nor listens until it recovers.
	StateFault
)

// String returns keepalived's name for the state.
func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ActionKind is what the caller must do for an Action.
type ActionKind uint8

// Action kinds.
const (
	// ActSendAdvert: send an advertisement for Inst with Action.Priority
	// (Instance.Advert fills it in).
	ActSendAdvert ActionKind = iota
	// ActBecomeMaster: Inst is now MASTER: add its virtual addresses and
	// send gratuitous ARPs for them. It follows the first advert.
	ActBecomeMaster
	// ActBecomeBackup: Inst is now BACKUP: remove its virtual addresses.
	ActBecomeBackup
	// ActBecomeFault: Inst is now FAULT: remove its virtual addresses.
	ActBecomeFault
	// ActStop: Inst is back in INIT after Stop: remove its virtual
	// addresses.
	ActStop
)

// String returns the kind's name.
func (k ActionKind) String() string {
	switch k {
	case ActSendAdvert:
		return "send_advert"
	case ActBecomeMaster:
		return "become_master"
	case ActBecomeBackup:
		return "become_backup"
	case ActBecomeFault:
		return "become_fault"
	case ActStop:
		return "stop"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing the caller must do, in order, for an instance.
type Action struct {
	Inst *Instance
	Kind ActionKind
	// Priority is the priority to advertise, for ActSendAdvert: the
	// effective priority, or 0 when the master steps down.
	Priority uint8
}

// Config is an instance's configuration (keepalived's vrrp_instance).
type Config struct {
	Name      string
	VRID      uint8
	Priority  uint8         // 1..255; 255 is the address owner
	AdvertInt time.Duration // v2: whole seconds, 1s..255s; v3: centiseconds, 10ms..40.95s
	Version   int           // 2 or 3
	NoPreempt bool
	// PreemptDelay: for this long after Start, a higher-priority backup
	// does not preempt a lower-priority master.
	PreemptDelay time.Duration
	// AuthPass is the v2 PASS password (at most 8 bytes); "" sends auth
	// type 0. Version 3 has no authentication and ignores it.
	AuthPass string
	// LocalIP is the primary address: the advert source, and the
	// tie-break between equal priorities.
	LocalIP netip.Addr
	VIPs    []netip.Addr
	// WantMaster is keepalived's "state MASTER". As in current
	// keepalived it does not skip the wait in BACKUP at startup (only
	// priority 255 does); it turns NoPreempt and PreemptDelay off, as
	// keepalived does, since both need an initial state of BACKUP.
	WantMaster bool
}

// Instance is one virtual router's state machine. It is not safe for
// concurrent use; an Instance and the others of its Group belong to one
// goroutine.
type Instance struct {
	cfg          Config
	noPreempt    bool
	preemptDelay time.Duration
	authType     uint8
	authData     [8]byte

	state          State
	prio           uint8 // effective
	masterAdverInt time.Duration
	deadline       time.Time
	started        time.Time
	holdPreempt    bool
	fault          bool // own fault, as set by SetFault
	masterIP       netip.Addr
	group          *Group
}

// New validates cfg and returns an instance in INIT.
func New(cfg Config) (*Instance, error) {
	fail := func(format string, args ...any) (*Instance, error) {
		return nil, fmt.Errorf("vrrp: instance %q: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	if cfg.VRID == 0 {
		return fail("virtual router ID 0, want 1-255")
	}
	if cfg.Priority == 0 {
		return fail("priority 0, want 1-255")
	}
	switch cfg.Version {
	case 2:
		if cfg.AdvertInt < time.Second || cfg.AdvertInt > 255*time.Second || cfg.AdvertInt%time.Second != 0 {
			return fail("advert interval %v, want whole seconds 1s-255s in VRRPv2", cfg.AdvertInt)
		}
		if len(cfg.AuthPass) > 8 {
			return fail("auth_pass longer than 8 bytes")
		}
	case 3:
		if cfg.AdvertInt < centisecond || cfg.AdvertInt > maxAdverMask*centisecond || cfg.AdvertInt%centisecond != 0 {
			return fail("advert interval %v, want centiseconds 0.01s-40.95s in VRRPv3", cfg.AdvertInt)
		}
	default:
		return fail("version %d, want 2 or 3", cfg.Version)
	}
	cfg.LocalIP = cfg.LocalIP.Unmap()
	if !cfg.LocalIP.Is4() {
		return fail("local address %v is not IPv4", cfg.LocalIP)
	}
	if len(cfg.VIPs) > 255 {
		return fail("%d virtual addresses, want at most 255", len(cfg.VIPs))
	}
	vips := make([]netip.Addr, len(cfg.VIPs))
	for n, v := range cfg.VIPs {
		if vips[n] = v.Unmap(); !vips[n].Is4() {
			return fail("virtual address %v is not IPv4", v)
		}
	}
	cfg.VIPs = vips
	i := &Instance{cfg: cfg, noPreempt: cfg.NoPreempt, preemptDelay: cfg.PreemptDelay}
	if cfg.WantMaster {
		i.noPreempt, i.preemptDelay = false, 0
	}
	if cfg.Version == 2 && cfg.AuthPass != "" {
		i.authType = AuthPass
		copy(i.authData[:], cfg.AuthPass)
	}
	i.prio = cfg.Priority
	i.masterAdverInt = cfg.AdvertInt
	return i, nil
}

// Config returns the configuration the instance was created with (VIPs
// unmapped to IPv4).
func (i *Instance) Config() Config { return i.cfg }

// State returns the current state.
func (i *Instance) State() State { return i.state }

// Priority returns the effective priority: the configured one plus the
// track weights of SetPriorityDelta.
func (i *Instance) Priority() uint8 { return i.prio }

// MasterAdverInt returns Master_Adver_Interval: the interval the current
// master advertises (v3), our own otherwise.
func (i *Instance) MasterAdverInt() time.Duration { return i.masterAdverInt }

// MasterIP returns the source of the last advert accepted from the
// master; zero while we are master or have not heard one.
func (i *Instance) MasterIP() netip.Addr { return i.masterIP }

// Group returns the sync group the instance belongs to, or nil.
func (i *Instance) Group() *Group { return i.group }

// Deadline returns when Tick must next be called: the Adver_Timer in
// MASTER, the Master_Down_Timer in BACKUP, the zero Time in INIT and
// FAULT.
func (i *Instance) Deadline() time.Time { return i.deadline }

// Advert fills a with the advertisement to send for priority (the
// Priority of an ActSendAdvert), reusing a.Addrs's backing array.
func (i *Instance) Advert(a *Advert, priority uint8) {
	a.Version = uint8(i.cfg.Version)
	a.VRID = i.cfg.VRID
	a.Priority = priority
	a.AdvertInt = i.cfg.AdvertInt
	a.AuthType = i.authType
	a.AuthData = i.authData
	a.Addrs = append(a.Addrs[:0], i.cfg.VIPs...)
}

// skewTime is Skew_Time (RFC 5798 6.1; RFC 3768 6.1 in whole seconds).
func (i *Instance) skewTime() time.Duration {
	if i.cfg.Version == 2 {
		return time.Duration(256-int(i.prio)) * time.Second / 256
	}
	return time.Duration(256-int(i.prio)) * i.masterAdverInt / 256
}

// masterDownInterval is Master_Down_Interval (RFC 5798 6.1).
func (i *Instance) masterDownInterval() time.Duration {
	return 3*i.masterAdverInt + i.skewTime()
}

func (i *Instance) preemptAllowed(now time.Time) bool {
	if i.noPreempt || i.holdPreempt {
		return false
	}
	return i.preemptDelay <= 0 || !now.Before(i.started.Add(i.preemptDelay))
}

// Start leaves INIT (RFC 5798 6.4.1): the address owner (priority 255)
// becomes MASTER at once, any other instance BACKUP with a full
// Master_Down_Timer. An instance with a fault pending starts in FAULT; one
// whose sync group already has a master joins it as MASTER. Start on a
// started instance does nothing.
func (i *Instance) Start(now time.Time) []Action {
	if i.state != StateInit {
		return nil
	}
	var acts []Action
	i.started = now
	i.masterAdverInt = i.cfg.AdvertInt
	switch {
	case i.group.faulted(i):
		i.enterFault(&acts)
	case i.cfg.Priority == 255:
		i.enterMaster(now, &acts)
		i.group.follow(now, i, StateMaster, &acts)
	case i.group.hasMaster(i):
		i.enterMaster(now, &acts)
	default:
		i.enterBackup(now, &acts)
	}
	return acts
}

// Receive acts on a, an advert that ParseAdvert accepted, from src (the
// IPv4 source). It returns the actions and ReasonOK, ReasonAddrs when a was
// acted on but lists other addresses than ours, or the reason a was
// dropped without effect (ReasonVRID, ReasonVersion, ReasonAuth,
// ReasonInterval).
func (i *Instance) Receive(now time.Time, src netip.Addr, a *Advert) ([]Action, Reason) {
	if a.VRID != i.cfg.VRID {
		return nil, ReasonVRID
	}
	if int(a.Version) != i.cfg.Version {
		return nil, ReasonVersion
	}
	if i.cfg.Version == 2 {
		if a.AuthType != i.authType || (i.authType == AuthPass && a.AuthData != i.authData) {
			return nil, ReasonAuth
		}
		if a.AdvertInt != i.cfg.AdvertInt {
			return nil, ReasonInterval
		}
	} else if a.AdvertInt <= 0 {
		// A zero Master_Adver_Interval would give a Master_Down_Interval
		// of Skew_Time alone and a takeover storm.
		return nil, ReasonInterval
	}
	reason := ReasonOK
	if !sameAddrs(a.Addrs, i.cfg.VIPs) {
		reason = ReasonAddrs
	}
	src = src.Unmap()
	var acts []Action
	switch i.state {
	case StateBackup: // RFC 5798 6.4.2
		switch {
		case a.Priority == 0:
			i.deadline = now.Add(i.skewTime())
		case a.Priority >= i.prio || !i.preemptAllowed(now):
			i.masterAdverInt = a.AdvertInt
			i.deadline = now.Add(i.masterDownInterval())
			i.masterIP = src
		}
		// Otherwise a lower-priority master: let the timer run out and
		// preempt it.
	case StateMaster: // RFC 5798 6.4.3
		switch {
		case a.Priority == 0:
			i.sendAdvert(&acts, i.prio)
			i.deadline = now.Add(i.cfg.AdvertInt)
		case a.Priority > i.prio || a.Priority == i.prio && addrGreater(src, i.cfg.LocalIP):
			i.masterAdverInt = a.AdvertInt
			i.enterBackup(now, &acts)
			i.masterIP = src
			i.group.follow(now, i, StateBackup, &acts)
		}
	}
	return acts, reason
}

// Tick fires the instance's timer when now has reached Deadline: a MASTER
// advertises, a BACKUP whose master went silent becomes MASTER. In a sync
// group, a BACKUP waits instead while another member still hears its
// master, so that a member the group forced to BACKUP cannot pull the
// group back to MASTER.
func (i *Instance) Tick(now time.Time) []Action {
	if i.deadline.IsZero() || now.Before(i.deadline) {
		return nil
	}
	var acts []Action
	switch i.state {
	case StateMaster:
		i.sendAdvert(&acts, i.prio)
		i.deadline = now.Add(i.cfg.AdvertInt)
	case StateBackup:
		if t := i.group.heldUntil(i, now); !t.IsZero() {
			i.deadline = t
			return nil
		}
		i.enterMaster(now, &acts)
		i.group.follow(now, i, StateMaster, &acts)
	}
	return acts
}

// SetFault reports a failed (true) or recovered (false) track_interface or
// weightless track_script. A failure moves the instance, and its sync
// group, to FAULT; a master first advertises priority 0 so that a backup
// takes over at once. Recovery, once no member of the group is still
// failed, moves them to BACKUP with a fresh Master_Down_Timer. An
// instance not yet started records the fault and starts in FAULT (its
// group's started members move at once).
func (i *Instance) SetFault(now time.Time, fault bool) []Action {
	if fault == i.fault {
		return nil
	}
	i.fault = fault
	var acts []Action
	if fault {
		if i.state != StateInit && i.state != StateFault {
			i.enterFault(&acts)
		}
		i.group.follow(now, i, StateFault, &acts)
		return acts
	}
	if i.group.faulted(nil) {
		return nil
	}
	if i.state == StateFault {
		i.enterBackup(now, &acts)
	}
	i.group.follow(now, i, StateBackup, &acts)
	return acts
}

// SetPriorityDelta sets the sum of the failed track weights: the
// effective priority becomes the configured one plus delta, clamped to
// 1-254. The address owner's 255 never changes. A MASTER advertises a new
// priority at once; a BACKUP's takes effect at the next advert.
func (i *Instance) SetPriorityDelta(now time.Time, delta int) []Action {
	p := i.cfg.Priority
	if p != 255 {
		p = uint8(min(max(int(p)+delta, 1), 254))
	}
	if p == i.prio {
		return nil
	}
	i.prio = p
	if i.state != StateMaster {
		return nil
	}
	var acts []Action
	i.sendAdvert(&acts, i.prio)
	i.deadline = now.Add(i.cfg.AdvertInt)
	return acts
}

// HoldPreempt holds (true) or releases preemption: while held, a BACKUP
// does not take over from a lower-priority master. The daemon holds it
// until its connection table is synchronised.
func (i *Instance) HoldPreempt(hold bool) { i.holdPreempt = hold }

// Stop returns the instance to INIT; a MASTER first advertises priority 0
// (RFC 5798 6.4.3) so that a backup takes over after Skew_Time. The other
// members of a sync group are left alone: the daemon stops them all.
func (i *Instance) Stop(now time.Time) []Action {
	if i.state == StateInit {
		return nil
	}
	var acts []Action
	if i.state == StateMaster {
		i.sendAdvert(&acts, 0)
	}
	i.state = StateInit
	i.deadline = time.Time{}
	i.masterIP = netip.Addr{}
	acts = append(acts, Action{Inst: i, Kind: ActStop})
	return acts
}

func (i *Instance) sendAdvert(acts *[]Action, prio uint8) {
	*acts = append(*acts, Action{Inst: i, Kind: ActSendAdvert, Priority: prio})
}

// enterMaster is RFC 5798 6.4.2's "Master_Down_Timer fires": advertise,
// become MASTER, arm the Adver_Timer.
func (i *Instance) enterMaster(now time.Time, acts *[]Action) {
	i.sendAdvert(acts, i.prio)
	*acts = append(*acts, Action{Inst: i, Kind: ActBecomeMaster})
	i.state = StateMaster
	i.masterAdverInt = i.cfg.AdvertInt
	i.deadline = now.Add(i.cfg.AdvertInt)
	i.masterIP = netip.Addr{}
}

// enterBackup arms a full Master_Down_Timer from the current
// Master_Adver_Interval.
func (i *Instance) enterBackup(now time.Time, acts *[]Action) {
	*acts = append(*acts, Action{Inst: i, Kind: ActBecomeBackup})
	i.state = StateBackup
	i.deadline = now.Add(i.masterDownInterval())
}

func (i *Instance) enterFault(acts *[]Action) {
	if i.state == StateMaster {
		i.sendAdvert(acts, 0)
	}
	*acts = append(*acts, Action{Inst: i, Kind: ActBecomeFault})
	i.state = StateFault
	i.deadline = time.Time{}
	i.masterIP = netip.Addr{}
}

// addrGreater compares IPv4 addresses as unsigned 32-bit numbers (RFC
// 5798 6.4.3), which is their byte order.
func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }

// sameAddrs reports whether got and want hold the same addresses, in any
// order, without allocating; the lists are a few addresses long.
func sameAddrs(got, want []netip.Addr) bool {
	return len(got) == len(want) && subset(got, want) && subset(want, got)
}

func subset(a, b []netip.Addr) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
