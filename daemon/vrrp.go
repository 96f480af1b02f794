package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/nexthop"
	"github.com/uvs-project/uvs/vrrp"
)

// The VRRP manager runs every vrrp_instance of the configuration on one
// goroutine: the instances' state machines (package vrrp) are pure, the
// manager feeds them adverts from its AF_PACKET sockets, timers and
// tracking results, and carries out what they decide: adverts, gratuitous
// ARPs, the ownership of the instances' addresses in the dataplane
// (standby while not MASTER), the sync daemon's role and notify scripts.

// trackEvery is how often tracked interfaces are looked at.
const trackEvery = 100 * time.Millisecond

// notifyTimeout bounds a notify script.
const notifyTimeout = 30 * time.Second

// vinst is one vrrp_instance.
type vinst struct {
	cfg    config.VRRPInstance
	inst   *vrrp.Instance
	ifc    *net.Interface
	mac    [6]byte // source MAC of adverts and GARPs: the interface's or the VMAC
	local  netip.Addr
	addrs  [][4]byte
	vips   []netip.Addr
	peerHW map[netip.Addr][6]byte
	group  *config.VRRPSyncGroup

	// Second GARP burst, garp_master_delay after becoming MASTER.
	garpAt time.Time

	state       atomic.Int32
	rx, tx      atomic.Uint64
	transitions atomic.Uint64
	reasons     [vrrp.NumReasons]atomic.Uint64
}

// rxAdvert is one frame from a VRRP socket.
type rxAdvert struct {
	ifindex int
	srcMAC  [6]byte
	ip      []byte
}

// scriptResult is one run of a vrrp_script.
type scriptResult struct {
	name string
	ok   bool
}

type vrrpManager struct {
	d     *Daemon
	log   *slog.Logger
	cfg   *config.Config
	insts []*vinst
	socks map[int]*vrrpSock
	rx    chan rxAdvert
	// scripts: state per vrrp_script, written by the manager loop only.
	scripts   map[string]*scriptState
	scriptRes chan scriptResult
	// drops counts adverts no instance took, by reason.
	drops [vrrp.NumReasons]atomic.Uint64

	// peers are the MACs seen on accepted adverts; only the manager's
	// goroutine touches them.
	peers [][6]byte

	// ctl runs functions on the manager's goroutine, which alone
	// touches the state machines.
	ctl chan func()

	// syncInst is the instance the sync daemon follows (nil: none).
	syncInst *vinst
	onSync   func(master bool)
	// onPeers is told the peer directors' MACs when one is learnt.
	onPeers func(macs [][6]byte)
}

type scriptState struct {
	cfg     config.VRRPScript
	ok      bool
	run     int // consecutive results agreeing with the next state
	running bool
	nextRun time.Time
}

// newVRRP prepares the manager: interfaces, addresses, sockets. It opens
// nothing when the configuration has no vrrp_instance.
func newVRRP(d *Daemon, cfg *config.Config) (*vrrpManager, error) {
	if len(cfg.VRRPInstances) == 0 {
		return nil, nil
	}
	m := &vrrpManager{d: d, log: d.log.With("part", "vrrp"), cfg: cfg, socks: map[int]*vrrpSock{},
		rx: make(chan rxAdvert, 256), scripts: map[string]*scriptState{}, scriptRes: make(chan scriptResult, 16),
		ctl: make(chan func(), 16)}
	groups := map[string]*config.VRRPSyncGroup{}
	for i := range cfg.VRRPSyncGroups {
		g := &cfg.VRRPSyncGroups[i]
		for _, n := range g.Group {
			groups[n] = g
		}
	}
	for _, sc := range cfg.VRRPScripts {
		m.scripts[sc.Name] = &scriptState{cfg: sc, ok: !sc.InitFail}
	}
	byName := map[string]*vinst{}
	for _, ci := range cfg.VRRPInstances {
		vi, err := m.prepare(ci)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("%s: vrrp_instance %s: %w", ci.Pos, ci.Name, err)
		}
		vi.group = groups[ci.Name]
		byName[ci.Name] = vi
		m.insts = append(m.insts, vi)
	}
	for _, g := range cfg.VRRPSyncGroups {
		var members []*vrrp.Instance
		for _, n := range g.Group {
			if vi := byName[n]; vi != nil {
				members = append(members, vi.inst)
			}
		}
		if len(members) > 0 {
			vrrp.NewGroup(g.Name, members...)
		}
	}
	if sd := cfg.Global.LVSSyncDaemon; sd != nil && sd.Instance != "" {
		m.syncInst = byName[sd.Instance]
	}
	return m, nil
}

func (m *vrrpManager) prepare(ci config.VRRPInstance) (*vinst, error) {
	if ci.Interface == "" {
		return nil, errors.New("no interface")
	}
	ifc, err := net.InterfaceByName(ci.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ci.Interface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ci.Interface)
	}
	vi := &vinst{cfg: ci, ifc: ifc, peerHW: map[netip.Addr][6]byte{}}
	copy(vi.mac[:], ifc.HardwareAddr)
	if ci.UseVMAC {
		vi.mac = vrrp.VirtualMAC(ci.VirtualRouterID)
	}
	for _, p := range ci.VirtualIPAddresses {
		if a := p.Addr(); a.Is4() {
			vi.addrs = append(vi.addrs, a.As4())
			vi.vips = append(vi.vips, a)
		}
	}
	vi.local = ci.UnicastSrcIP
	if !vi.local.IsValid() {
		vi.local = ci.McastSrcIP
	}
	if !vi.local.IsValid() {
		vi.local, err = primaryIPv4(ifc)
		if err != nil {
			return nil, err
		}
	}
	version := ci.Version
	if version == 0 {
		version = m.cfg.Global.VRRPVersion
	}
	pass := ""
	if ci.AuthType == "PASS" {
		pass = ci.AuthPass
	}
	inst, err := vrrp.New(vrrp.Config{
		Name: ci.Name, VRID: ci.VirtualRouterID, Priority: ci.Priority, AdvertInt: ci.AdvertInt,
		Version: version, NoPreempt: ci.NoPreempt, PreemptDelay: ci.PreemptDelay, AuthPass: pass,
		LocalIP: vi.local, VIPs: vi.vips, WantMaster: ci.State == "MASTER",
	})
	if err != nil {
		return nil, err
	}
	vi.inst = inst
	if _, ok := m.socks[ifc.Index]; !ok {
		s, err := openVRRPSock(ifc.Index)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", ci.Interface, err)
		}
		m.socks[ifc.Index] = s
	}
	if ci.UseVMAC {
		if err := m.socks[ifc.Index].addUnicast(vi.mac); err != nil {
			return nil, fmt.Errorf("interface %s: virtual MAC: %w", ci.Interface, err)
		}
		m.d.model.SetVMAC(vi.addrs, vi.mac)
	}
	return vi, nil
}

func primaryIPv4(ifc *net.Interface) (netip.Addr, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address for the adverts' source", ifc.Name)
}

// allAddrs lists every address the instances hold.
func (m *vrrpManager) allAddrs() [][4]byte {
	var out [][4]byte
	for _, vi := range m.insts {
		out = append(out, vi.addrs...)
	}
	return out
}

func (m *vrrpManager) close() {
	for _, s := range m.socks {
		s.close()
	}
}

// run is the manager's loop.
func (m *vrrpManager) run(ctx context.Context) {
	defer m.close()
	for _, s := range m.socks {
		go s.read(ctx, m.rx)
	}
	now := time.Now()
	for _, vi := range m.insts {
		m.exec(vi.inst.Start(now))
	}
	m.track(now)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(trackEvery)
	defer tick.Stop()
	for {
		next := m.nextDeadline()
		wait := time.Until(next)
		if wait < 0 {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			now := time.Now()
			for _, vi := range m.insts {
				m.exec(vi.inst.Stop(now))
			}
			return
		case a := <-m.rx:
			m.receive(time.Now(), a)
		case <-timer.C:
		case <-tick.C:
			m.track(time.Now())
		case r := <-m.scriptRes:
			m.scriptDone(time.Now(), r)
		case fn := <-m.ctl:
			fn()
		}
		m.timers(time.Now())
	}
}

func (m *vrrpManager) nextDeadline() time.Time {
	next := time.Now().Add(time.Second)
	for _, vi := range m.insts {
		if d := vi.inst.Deadline(); !d.IsZero() && d.Before(next) {
			next = d
		}
		if !vi.garpAt.IsZero() && vi.garpAt.Before(next) {
			next = vi.garpAt
		}
	}
	return next
}

func (m *vrrpManager) timers(now time.Time) {
	for _, vi := range m.insts {
		if d := vi.inst.Deadline(); !d.IsZero() && !now.Before(d) {
			m.exec(vi.inst.Tick(now))
		}
		if !vi.garpAt.IsZero() && !now.Before(vi.garpAt) {
			vi.garpAt = time.Time{}
			if vi.inst.State() == vrrp.StateMaster {
				m.garp(vi)
			}
		}
	}
}

func (m *vrrpManager) receive(now time.Time, a rxAdvert) {
	var adv vrrp.Advert
	if r := vrrp.ParseAdvert(a.ip, &adv); r != vrrp.ReasonOK {
		m.drops[r].Add(1)
		return
	}
	src := netip.AddrFrom4(header.IPv4(a.ip).Src())
	var vi *vinst
	for _, v := range m.insts {
		if v.ifc.Index == a.ifindex && v.cfg.VirtualRouterID == adv.VRID {
			vi = v
			break
		}
	}
	if vi == nil {
		m.drops[vrrp.ReasonVRID].Add(1)
		return
	}
	if src == vi.local {
		return // our own advert, looped by a switch
	}
	acts, r := vi.inst.Receive(now, src, &adv)
	if r != vrrp.ReasonOK {
		vi.reasons[r].Add(1)
		if r != vrrp.ReasonAddrs {
			return
		}
	}
	vi.rx.Add(1)
	m.learnPeer(a.srcMAC)
	m.exec(acts)
}

// learnPeer records another director's MAC, so the dataplane leaves what
// that director scheduled to our host.
func (m *vrrpManager) learnPeer(mac [6]byte) {
	if slices.Contains(m.peers, mac) {
		return
	}
	m.peers = append(m.peers, mac)
	m.d.model.SetPeerMACs(m.peers)
	if m.onPeers != nil {
		m.onPeers(m.peers)
	}
}

func (m *vrrpManager) byInst(in *vrrp.Instance) *vinst {
	for _, vi := range m.insts {
		if vi.inst == in {
			return vi
		}
	}
	return nil
}

// exec carries out the state machines' decisions.
func (m *vrrpManager) exec(acts []vrrp.Action) {
	for _, a := range acts {
		vi := m.byInst(a.Inst)
		if vi == nil {
			continue
		}
		switch a.Kind {
		case vrrp.ActSendAdvert:
			m.advert(vi, a.Priority)
		case vrrp.ActBecomeMaster:
			m.transition(vi, vrrp.StateMaster)
		case vrrp.ActBecomeBackup:
			m.transition(vi, vrrp.StateBackup)
		case vrrp.ActBecomeFault:
			m.transition(vi, vrrp.StateFault)
		}
	}
}

func (m *vrrpManager) transition(vi *vinst, st vrrp.State) {
	if vrrp.State(vi.state.Load()) == st {
		return
	}
	vi.state.Store(int32(st))
	vi.transitions.Add(1)
	m.log.Info("VRRP transition", "instance", vi.cfg.Name, "state", st.String(), "priority", vi.inst.Priority())
	master := st == vrrp.StateMaster
	// Release the addresses before announcing them, and withdraw them
	// at once when leaving MASTER.
	m.d.model.SetStandby(vi.addrs, !master)
	if master {
		m.garp(vi)
		delay := vi.cfg.GarpMasterDelay
		if delay < 0 {
			delay = m.cfg.Global.VRRPGarpMasterDelay
		}
		if delay > 0 {
			vi.garpAt = time.Now().Add(delay)
		}
	} else {
		vi.garpAt = time.Time{}
	}
	if vi == m.syncInst && m.onSync != nil {
		m.onSync(master)
	}
	m.notify(vi, st)
}

// advert sends one advertisement, to the multicast group or to each
// unicast peer.
func (m *vrrpManager) advert(vi *vinst, prio uint8) {
	s := m.socks[vi.ifc.Index]
	var adv vrrp.Advert
	vi.inst.Advert(&adv, prio)
	if len(vi.cfg.UnicastPeers) == 0 {
		frame := vrrp.AppendAdvertFrame(nil, vi.mac, vrrp.MulticastMAC, vi.local, vrrp.MulticastGroup, &adv)
		if err := s.send(frame); err != nil {
			m.log.Warn("advert", "instance", vi.cfg.Name, "err", err)
			return
		}
		vi.tx.Add(1)
		return
	}
	for _, p := range vi.cfg.UnicastPeers {
		hw, ok := vi.peerHW[p]
		if !ok {
			h, err := nexthop.Resolve(p, 200*time.Millisecond)
			if err != nil || len(h.MAC) != 6 {
				m.log.Warn("unicast peer unresolved", "instance", vi.cfg.Name, "peer", p, "err", err)
				continue
			}
			copy(hw[:], h.MAC)
			vi.peerHW[p] = hw
		}
		frame := vrrp.AppendAdvertFrame(nil, vi.mac, hw, vi.local, p, &adv)
		if err := s.send(frame); err != nil {
			m.log.Warn("advert", "instance", vi.cfg.Name, "peer", p, "err", err)
			continue
		}
		vi.tx.Add(1)
	}
}

// garp announces the instance's addresses: garp_master_repeat gratuitous
// ARPs for each, as keepalived sends them on becoming MASTER.
func (m *vrrpManager) garp(vi *vinst) {
	repeat := vi.cfg.GarpMasterRepeat
	if repeat < 0 {
		repeat = m.cfg.Global.VRRPGarpMasterRepeat
	}
	if repeat <= 0 {
		repeat = 1
	}
	s := m.socks[vi.ifc.Index]
	for range repeat {
		for _, a := range vi.vips {
			if err := s.send(vrrp.AppendGARP(nil, vi.mac, a)); err != nil {
				m.log.Warn("gratuitous ARP", "instance", vi.cfg.Name, "addr", a, "err", err)
			}
		}
	}
}

// notify runs the instance's and its group's notify scripts as keepalived
// does: notify_master/_backup/_fault without arguments, and notify with
// "INSTANCE"|"GROUP", the name, the state and (instances) the priority.
func (m *vrrpManager) notify(vi *vinst, st vrrp.State) {
	m.runScript(stateScript(st, vi.cfg.NotifyMaster, vi.cfg.NotifyBackup, vi.cfg.NotifyFault))
	if vi.cfg.Notify != "" {
		m.runScript(vi.cfg.Notify, "INSTANCE", vi.cfg.Name, st.String(), strconv.Itoa(int(vi.inst.Priority())))
	}
	if g := vi.group; g != nil && m.groupState(g) == st {
		m.runScript(stateScript(st, g.NotifyMaster, g.NotifyBackup, g.NotifyFault))
		if g.Notify != "" {
			m.runScript(g.Notify, "GROUP", g.Name, st.String())
		}
	}
}

// stateScript picks the notify_master, _backup or _fault script for st.
func stateScript(st vrrp.State, master, backup, fault string) string {
	switch st {
	case vrrp.StateMaster:
		return master
	case vrrp.StateBackup:
		return backup
	case vrrp.StateFault:
		return fault
	}
	return ""
}

// groupState is the state every member of g is in, or StateInit while
// they differ.
func (m *vrrpManager) groupState(g *config.VRRPSyncGroup) vrrp.State {
	st := vrrp.State(255)
	for _, vi := range m.insts {
		if vi.group != g {
			continue
		}
		s := vrrp.State(vi.state.Load())
		if st == 255 {
			st = s
		} else if s != st {
			return vrrp.StateInit
		}
	}
	return st
}

func (m *vrrpManager) runScript(script string, args ...string) {
	if script == "" {
		return
	}
	line := script
	for _, a := range args {
		line += " " + a
	}
	go runScripts(m.log, []string{line}, notifyTimeout)
}

// track looks at tracked interfaces and starts due vrrp_scripts, then
// tells each instance its fault state and priority change.
func (m *vrrpManager) track(now time.Time) {
	for _, sc := range m.scripts {
		if !sc.running && !now.Before(sc.nextRun) && m.scriptUsed(sc.cfg.Name) {
			sc.running = true
			sc.nextRun = now.Add(sc.cfg.Interval)
			go m.runTrackScript(sc.cfg)
		}
	}
	for _, vi := range m.insts {
		fault, delta := false, 0
		ifs := vi.cfg.TrackInterfaces
		if !vi.cfg.DontTrackPrimary {
			ifs = append([]config.Track{{Name: vi.cfg.Interface}}, ifs...)
		}
		for _, t := range ifs {
			up := linkUp(t.Name)
			f, d := trackEffect(t, up)
			fault, delta = fault || f, delta+d
		}
		for _, t := range vi.cfg.TrackScripts {
			sc := m.scripts[t.Name]
			if sc == nil {
				continue
			}
			if t.Weight == 0 && sc.cfg.Weight != 0 {
				t.Weight, t.Reverse = sc.cfg.Weight, sc.cfg.Reverse
			}
			f, d := trackEffect(t, sc.ok)
			fault, delta = fault || f, delta+d
		}
		if g := vi.group; g != nil {
			for _, t := range g.TrackInterfaces {
				f, _ := trackEffect(config.Track{Name: t.Name}, linkUp(t.Name))
				fault = fault || f
			}
		}
		// Both return nothing while the fault and the priority stay.
		m.exec(vi.inst.SetFault(now, fault))
		m.exec(vi.inst.SetPriorityDelta(now, delta))
	}
}

func (m *vrrpManager) scriptUsed(name string) bool {
	for _, vi := range m.insts {
		for _, t := range vi.cfg.TrackScripts {
			if t.Name == name {
				return true
			}
		}
	}
	return false
}

// trackEffect is keepalived's rule for one tracked object: weight 0
// faults the instance while the object is down; a positive weight is
// added while it is up, a negative one while it is down ("reverse" swaps
// up and down).
func trackEffect(t config.Track, up bool) (fault bool, delta int) {
	if t.Reverse {
		up = !up
	}
	switch {
	case t.Weight == 0:
		return !up, 0
	case t.Weight > 0 && up:
		return false, t.Weight
	case t.Weight < 0 && !up:
		return false, t.Weight
	}
	return false, 0
}

func linkUp(name string) bool {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false
	}
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

func (m *vrrpManager) runTrackScript(sc config.VRRPScript) {
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = sc.Interval
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := exec.CommandContext(ctx, "/bin/sh", "-c", sc.Script).Run()
	m.scriptRes <- scriptResult{name: sc.Name, ok: err == nil}
}

// scriptDone applies rise and fall to a vrrp_script's result.
func (m *vrrpManager) scriptDone(now time.Time, r scriptResult) {
	sc := m.scripts[r.name]
	if sc == nil {
		return
	}
	sc.running = false
	if r.ok == sc.ok {
		sc.run = 0
	} else {
		sc.run++
		need := sc.cfg.Fall
		if r.ok {
			need = sc.cfg.Rise
		}
		if sc.run >= need {
			sc.ok, sc.run = r.ok, 0
			m.log.Info("VRRP script", "script", sc.cfg.Name, "ok", sc.ok)
		}
	}
	m.track(now)
}

// holdPreempt keeps the sync instance (and so its group) from preempting
// until the connection table has come from the master.
func (m *vrrpManager) holdPreempt(hold bool) {
	if m.syncInst == nil {
		return
	}
	select {
	case m.ctl <- func() { m.syncInst.inst.HoldPreempt(hold) }:
	default:
		m.log.Warn("VRRP manager busy: preempt hold not changed", "hold", hold)
	}
}
