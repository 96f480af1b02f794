package service

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/uvs-project/uvs/sched"
)

// Fwd is a destination's forwarding method, IPVS's IP_VS_CONN_F_FWD_MASK.
type Fwd uint8

const (
	FwdMasq    Fwd = iota // NAT
	FwdLocal              // to the director itself
	FwdTunnel             // IPIP
	FwdRoute              // DR
	FwdFullNat            // NAT of both ends
)

var fwdNames = [...]string{"Masq", "Local", "Tunnel", "Route", "FullNat"}

func (f Fwd) String() string {
	if int(f) < len(fwdNames) {
		return fwdNames[f]
	}
	return fmt.Sprintf("Fwd(%d)", uint8(f))
}

// ParseFwd reads an ipvsadm forward name.
func ParseFwd(s string) (Fwd, error) {
	for i, n := range fwdNames {
		if n == s {
			return Fwd(i), nil
		}
	}
	return 0, fmt.Errorf("unknown forwarding method %q", s)
}

// Key names a virtual service: protocol, address and port, or a
// firewall mark (Proto, Addr and Port then zero).
type Key struct {
	Proto  uint8
	Addr   [4]byte
	Port   uint16
	FWMark uint32
}

func (k Key) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	p := "TCP"
	if k.Proto == 17 {
		p = "UDP"
	}
	return fmt.Sprintf("%s %s", p, netip.AddrPortFrom(netip.AddrFrom4(k.Addr), k.Port))
}

// ServiceConfig is what an operator sets on a virtual service.
type ServiceConfig struct {
	Key        Key
	Sched      string
	SchedFlags sched.Flags
	Persistent bool
	Timeout    uint32 // persistence, seconds
	Netmask    int    // persistence granularity, prefix bits
}

// DestConfig is what an operator sets on a real server.
type DestConfig struct {
	Addr       [4]byte
	Port       uint16
	Fwd        Fwd
	Weight     int32
	UThreshold uint32
	LThreshold uint32
}

// NextHop is where frames for a destination go: the interface and the
// next hop's MAC, resolved from the routing and neighbour tables.
type NextHop struct {
	Ifindex int32
	MAC     [6]byte
	// Src is the director's own address on that interface, the outer
	// source of TUN mode's IPIP header.
	Src [4]byte
	// Local is set when the destination is an address of this host: a
	// director that is also a real server hands such connections to its
	// own stack (IPVS's LOCALNODE).
	Local bool
	Valid bool
}

// Dest is a real server as the model holds it.
type Dest struct {
	ID    uint32
	Svc   uint32 // service ID
	Cfg   DestConfig
	Conns *sched.ConnCounts
	// Removed is set when the destination left its service. Its
	// connections keep their ID; IPVS drops their packets (the server is
	// not available) and, with expire_nodest_conn, expires them; adding
	// the server back revives it, and them (IPVS's trash).
	Removed bool
}

// Service is a virtual service as the model holds it.
type Service struct {
	ID    uint32
	Cfg   ServiceConfig
	Dests []uint32 // destination IDs, in IPVS list order
	// LocalAddrs are FULLNAT's local addresses (owned by uvs).
	LocalAddrs [][4]byte
}

// Errors callers test for.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)

// Model is the control plane's view. Its methods are safe for concurrent
// use; each change publishes a new Snapshot.
type Model struct {
	mu           sync.Mutex
	services     []*Service
	dests        []*Dest // by ID; never shrinks
	nextSvc      uint32
	owned        map[[4]byte]bool
	standby      map[[4]byte]bool    // addresses of VRRP instances that are not MASTER
	peerMACs     map[[6]byte]bool    // other directors of our VRRP instances
	vmacs        map[[4]byte][6]byte // VRRP virtual MACs (use_vmac), by address
	expireNodest bool
	nexthops     map[[4]byte]NextHop // by destination address
	timeouts     Timeouts
	gen          uint64

	snap atomic.Pointer[Snapshot]
}

// Timeouts are ipvsadm --set's values in seconds.
type Timeouts struct{ TCP, TCPFin, UDP uint32 }

// DefaultTimeouts are IPVS's defaults.
var DefaultTimeouts = Timeouts{TCP: 900, TCPFin: 120, UDP: 300}

// NewModel returns an empty model with IPVS's default timeouts.
func NewModel() *Model {
	m := &Model{owned: map[[4]byte]bool{}, standby: map[[4]byte]bool{}, peerMACs: map[[6]byte]bool{}, vmacs: map[[4]byte][6]byte{}, nexthops: map[[4]byte]NextHop{}, timeouts: DefaultTimeouts, nextSvc: 1}
	m.publishLocked()
	return m
}

// Snapshot returns the current snapshot.
func (m *Model) Snapshot() *Snapshot { return m.snap.Load() }

func (m *Model) findLocked(k Key) (int, *Service) {
	for i, s := range m.services {
		if s.Cfg.Key == k {
			return i, s
		}
	}
	return -1, nil
}

func validate(c *ServiceConfig) error {
	if _, err := sched.New(c.Sched, c.SchedFlags); err != nil {
		return err
	}
	if c.Netmask == 0 {
		c.Netmask = 32
	}
	if c.Netmask < 0 || c.Netmask > 32 {
		return fmt.Errorf("persistence netmask /%d out of range", c.Netmask)
	}
	if c.Key.FWMark == 0 && c.Key.Proto != 6 && c.Key.Proto != 17 {
		return fmt.Errorf("protocol %d not supported", c.Key.Proto)
	}
	return nil
}

// AddService adds a virtual service (ipvsadm -A).
func (m *Model) AddService(c ServiceConfig) error {
	if err := validate(&c); err != nil {
		return fmt.Errorf("add service %v: %w", c.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, s := m.findLocked(c.Key); s != nil {
		return fmt.Errorf("add service %v: %w", c.Key, ErrExists)
	}
	m.services = append(m.services, &Service{ID: m.nextSvc, Cfg: c})
	m.nextSvc++
	m.publishLocked()
	return nil
}

// EditService changes a virtual service's settings (ipvsadm -E).
func (m *Model) EditService(c ServiceConfig) error {
	if err := validate(&c); err != nil {
		return fmt.Errorf("edit service %v: %w", c.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.findLocked(c.Key)
	if s == nil {
		return fmt.Errorf("edit service %v: %w", c.Key, ErrNotFound)
	}
	s.Cfg = c
	m.publishLocked()
	return nil
}

// DelService removes a virtual service and its destinations (ipvsadm -D).
func (m *Model) DelService(k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, s := m.findLocked(k)
	if s == nil {
		return fmt.Errorf("delete service %v: %w", k, ErrNotFound)
	}
	for _, id := range s.Dests {
		m.dests[id].Removed = true
	}
	m.services = slices.Delete(m.services, i, i+1)
	m.publishLocked()
	return nil
}

// Clear removes every service (ipvsadm -C).
func (m *Model) Clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.services {
		for _, id := range s.Dests {
			m.dests[id].Removed = true
		}
	}
	m.services = nil
	m.publishLocked()
}

func (m *Model) destIndexLocked(s *Service, addr [4]byte, port uint16) int {
	for i, id := range s.Dests {
		d := m.dests[id]
		if d.Cfg.Addr == addr && d.Cfg.Port == port {
			return i
		}
	}
	return -1
}

// AddDest adds a real server to a service (ipvsadm -a). A server removed
// earlier from the same service gets its old ID back, so connections that
// still name it count against it again, as IPVS restores from its trash.
func (m *Model) AddDest(k Key, c DestConfig) error {
	if c.Weight < 0 {
		return fmt.Errorf("add dest: weight %d < 0", c.Weight)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.findLocked(k)
	if s == nil {
		return fmt.Errorf("add dest to %v: service %w", k, ErrNotFound)
	}
	if c.Port == 0 && k.FWMark == 0 {
		c.Port = k.Port
	}
	if m.destIndexLocked(s, c.Addr, c.Port) >= 0 {
		return fmt.Errorf("add dest %v to %v: %w", netip.AddrPortFrom(netip.AddrFrom4(c.Addr), c.Port), k, ErrExists)
	}
	if (c.Fwd == FwdRoute || c.Fwd == FwdTunnel) && k.FWMark == 0 && c.Port != k.Port {
		return fmt.Errorf("add dest %v to %v: port mapping is impossible with %v forwarding", netip.AddrPortFrom(netip.AddrFrom4(c.Addr), c.Port), k, c.Fwd)
	}
	var d *Dest
	for _, old := range m.dests {
		if old != nil && old.Removed && old.Svc == s.ID && old.Cfg.Addr == c.Addr && old.Cfg.Port == c.Port {
			d = old
			break
		}
	}
	if d == nil {
		d = &Dest{ID: uint32(len(m.dests)), Svc: s.ID, Conns: new(sched.ConnCounts)}
		m.dests = append(m.dests, d)
	}
	d.Cfg, d.Removed = c, false
	// IPVS adds a destination at the head of the service's list; the
	// schedulers' choices and ipvsadm's listing follow that order.
	s.Dests = slices.Insert(s.Dests, 0, d.ID)
	m.publishLocked()
	return nil
}

// EditDest changes a real server's settings (ipvsadm -e); established
// connections are untouched.
func (m *Model) EditDest(k Key, c DestConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.findLocked(k)
	if s == nil {
		return fmt.Errorf("edit dest in %v: service %w", k, ErrNotFound)
	}
	if c.Port == 0 && k.FWMark == 0 {
		c.Port = k.Port
	}
	i := m.destIndexLocked(s, c.Addr, c.Port)
	if i < 0 {
		return fmt.Errorf("edit dest %v in %v: %w", netip.AddrPortFrom(netip.AddrFrom4(c.Addr), c.Port), k, ErrNotFound)
	}
	m.dests[s.Dests[i]].Cfg = c
	m.publishLocked()
	return nil
}

// DelDest removes a real server from a service (ipvsadm -d).
func (m *Model) DelDest(k Key, addr [4]byte, port uint16) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.findLocked(k)
	if s == nil {
		return fmt.Errorf("delete dest in %v: service %w", k, ErrNotFound)
	}
	if port == 0 && k.FWMark == 0 {
		port = k.Port
	}
	i := m.destIndexLocked(s, addr, port)
	if i < 0 {
		return fmt.Errorf("delete dest %v in %v: %w", netip.AddrPortFrom(netip.AddrFrom4(addr), port), k, ErrNotFound)
	}
	m.dests[s.Dests[i]].Removed = true
	s.Dests = slices.Delete(s.Dests, i, i+1)
	m.publishLocked()
	return nil
}

// SetLocalAddrs sets the FULLNAT local addresses of a service; uvs owns
// them (answers ARP for them) from then on.
func (m *Model) SetLocalAddrs(k Key, addrs [][4]byte) error {
	return m.UpdateLocalAddrs(k, func([][4]byte) ([][4]byte, error) { return addrs, nil })
}

// UpdateLocalAddrs replaces a service's FULLNAT local addresses with what
// fn makes of the current ones, as one change under the model's lock, so
// concurrent edits (uvsadm -P/-Q, a reload) never lose one another's. An
// error from fn changes nothing.
func (m *Model) UpdateLocalAddrs(k Key, fn func(cur [][4]byte) ([][4]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s := m.findLocked(k)
	if s == nil {
		return fmt.Errorf("local addresses of %v: service %w", k, ErrNotFound)
	}
	next, err := fn(slices.Clone(s.LocalAddrs))
	if err != nil {
		return err
	}
	s.LocalAddrs = slices.Clone(next)
	m.publishLocked()
	return nil
}

// SetOwned replaces the set of extra addresses uvs owns besides the VIPs
// (floating gateways, FULLNAT local addresses): uvs answers ARP for them.
func (m *Model) SetOwned(addrs [][4]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owned = map[[4]byte]bool{}
	for _, a := range addrs {
		m.owned[a] = true
	}
	m.publishLocked()
}

// SetStandby marks addresses as held by a VRRP instance that is not
// MASTER (standby) or releases them (active). A standby address is not
// owned: uvs neither answers ARP or echo for it nor forwards the traffic
// of a service on it, new or established, so a BACKUP never competes
// with the MASTER.
func (m *Model) SetStandby(addrs [][4]byte, standby bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for _, a := range addrs {
		if m.standby[a] != standby {
			changed = true
		}
		if standby {
			m.standby[a] = true
		} else {
			delete(m.standby, a)
		}
	}
	if changed {
		m.publishLocked()
	}
}

// SetPeerMACs replaces the set of other directors' MAC addresses, learnt
// from their VRRP adverts. A packet from a peer director was scheduled by
// it already: uvs leaves it to its own host instead of scheduling it
// again, so two directors that are also real servers never loop.
func (m *Model) SetPeerMACs(macs [][6]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[[6]byte]bool{}
	for _, a := range macs {
		next[a] = true
	}
	if maps.Equal(next, m.peerMACs) {
		return
	}
	m.peerMACs = next
	m.publishLocked()
}

// SetExpireNodestConn is IPVS's net.ipv4.vs.expire_nodest_conn: a packet
// of a connection whose real server was removed expires the connection
// at once, instead of being dropped while it times out.
func (m *Model) SetExpireNodestConn(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireNodest = on
	m.publishLocked()
}

// SetVMAC makes mac (a VRRP instance's virtual MAC, use_vmac) the
// hardware address of addrs: ARP replies name it, and frames sent to it
// are taken as addressed to uvs.
func (m *Model) SetVMAC(addrs [][4]byte, mac [6]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range addrs {
		m.vmacs[a] = mac
	}
	m.publishLocked()
}

// SetNextHop records where frames for a destination address go.
func (m *Model) SetNextHop(addr [4]byte, nh NextHop) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nexthops[addr] == nh {
		return
	}
	m.nexthops[addr] = nh
	m.publishLocked()
}

// SetTimeouts sets ipvsadm --set's values; zero leaves a value unchanged.
func (m *Model) SetTimeouts(t Timeouts) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.TCP != 0 {
		m.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		m.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		m.timeouts.UDP = t.UDP
	}
	m.publishLocked()
}

// Services returns a copy of the services and their destinations, in the
// order ipvsadm lists them.
func (m *Model) Services() ([]Service, []Dest) {
	m.mu.Lock()
	defer m.mu.Unlock()
	svcs := make([]Service, len(m.services))
	for i, s := range m.services {
		svcs[i] = *s
		svcs[i].Dests = slices.Clone(s.Dests)
		svcs[i].LocalAddrs = slices.Clone(s.LocalAddrs)
	}
	dests := make([]Dest, len(m.dests))
	for i, d := range m.dests {
		dests[i] = *d
	}
	return svcs, dests
}
