package service

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/uvs-project/uvs/sched"
)

// Snapshot is an immutable view of the model for the dataplane. Nothing
// in it may be written after it is published.
type Snapshot struct {
	Gen      uint64
	Services []SvcSnap
	// Dests is indexed by destination ID and holds every destination ever
	// created, removed ones included.
	Dests []DestSnap
	Owned map[[4]byte]bool // addresses uvs answers ARP for (VIPs included)
	// ExpireNodestConn is IPVS's expire_nodest_conn sysctl.
	ExpireNodestConn bool
	// Standby are owned addresses that a VRRP instance holds while not
	// MASTER; they are left out of Owned.
	Standby map[[4]byte]bool
	// PeerMACs are the other directors of our VRRP instances: a
	// handful, searched on a new connection's first packet.
	PeerMACs [][6]byte
	// VMACs are VRRP virtual MACs by address; VMACList has each once.
	VMACs    map[[4]byte][6]byte
	VMACList [][6]byte
	Timeouts Timeouts
	// Marks are the firewall marks of the fwmark services, sorted.
	Marks []uint32

	byKey   map[Key]int
	vips    map[[4]byte]bool
	vipList [][4]byte
	// markByID is the firewall mark by service ID, as long as the
	// highest fwmark service's ID: a slice, because connection sync asks
	// for every record it sends.
	markByID []uint32
}

// SvcSnap is one virtual service in a snapshot.
type SvcSnap struct {
	ID         uint32
	Cfg        ServiceConfig
	Dests      []sched.Dest // in IPVS list order, as the scheduler sees them
	DestIDs    []uint32     // parallel to Dests
	SchedFlags sched.Flags
	LocalAddrs [][4]byte // FULLNAT local addresses
	// Standby is set while the service's address is held by a VRRP
	// instance that is not MASTER: nothing of it is forwarded.
	Standby bool
}

// DestSnap is one destination in a snapshot.
type DestSnap struct {
	Addr    [4]byte
	Port    uint16
	Fwd     Fwd
	Svc     uint32
	NextHop NextHop
	Conns   *sched.ConnCounts
	Removed bool
}

// Lookup finds the service for a packet's destination; it does not
// allocate.
func (s *Snapshot) Lookup(proto uint8, addr [4]byte, port uint16) (int, bool) {
	i, ok := s.byKey[Key{Proto: proto, Addr: addr, Port: port}]
	return i, ok
}

// LookupMark finds the service of a firewall mark.
func (s *Snapshot) LookupMark(mark uint32) (int, bool) {
	i, ok := s.byKey[Key{FWMark: mark}]
	return i, ok
}

// MarkOf returns the firewall mark of the service with ID id: 0 for a
// service with an address, or an ID this snapshot does not have.
func (s *Snapshot) MarkOf(id uint32) uint32 {
	if int(id) < len(s.markByID) {
		return s.markByID[id]
	}
	return 0
}

// VIPs returns the addresses of the services, sorted.
func (s *Snapshot) VIPs() [][4]byte { return s.vipList }

// IsVIP reports whether addr is the address of some virtual service.
func (s *Snapshot) IsVIP(addr [4]byte) bool { return s.vips[addr] }

func (m *Model) publishLocked() {
	m.gen++
	s := &Snapshot{
		Gen:              m.gen,
		Owned:            map[[4]byte]bool{},
		Standby:          maps.Clone(m.standby),
		ExpireNodestConn: m.expireNodest,
		VMACs:            maps.Clone(m.vmacs),
		Timeouts:         m.timeouts,
		byKey:            map[Key]int{},
		vips:             map[[4]byte]bool{},
		Dests:            make([]DestSnap, len(m.dests)),
	}
	for a := range m.owned {
		s.Owned[a] = true
	}
	for i, d := range m.dests {
		s.Dests[i] = DestSnap{Addr: d.Cfg.Addr, Port: d.Cfg.Port, Fwd: d.Cfg.Fwd, Svc: d.Svc,
			NextHop: m.nexthops[d.Cfg.Addr], Conns: d.Conns, Removed: d.Removed}
	}
	for _, svc := range m.services {
		ss := SvcSnap{ID: svc.ID, Cfg: svc.Cfg, SchedFlags: svc.Cfg.SchedFlags, LocalAddrs: svc.LocalAddrs,
			Standby: svc.Cfg.Key.FWMark == 0 && m.standby[svc.Cfg.Key.Addr]}
		for _, a := range svc.LocalAddrs {
			s.Owned[a] = true
		}
		for _, id := range svc.Dests {
			d := m.dests[id]
			ss.Dests = append(ss.Dests, sched.Dest{
				Addr:       netip.AddrFrom4(d.Cfg.Addr),
				Port:       d.Cfg.Port,
				Weight:     d.Cfg.Weight,
				Flags:      sched.DestAvailable,
				UThreshold: d.Cfg.UThreshold,
				LThreshold: d.Cfg.LThreshold,
				Conns:      d.Conns,
			})
			ss.DestIDs = append(ss.DestIDs, id)
		}
		s.byKey[svc.Cfg.Key] = len(s.Services)
		if svc.Cfg.Key.FWMark == 0 {
			s.vips[svc.Cfg.Key.Addr] = true
			s.Owned[svc.Cfg.Key.Addr] = true
		} else {
			s.Marks = append(s.Marks, svc.Cfg.Key.FWMark)
			if n := int(svc.ID) + 1; n > len(s.markByID) {
				s.markByID = append(s.markByID, make([]uint32, n-len(s.markByID))...)
			}
			s.markByID[svc.ID] = svc.Cfg.Key.FWMark
		}
		s.Services = append(s.Services, ss)
	}
	for a := range m.standby {
		delete(s.Owned, a)
	}
	for mac := range m.peerMACs {
		s.PeerMACs = append(s.PeerMACs, mac)
	}
	for _, mac := range m.vmacs {
		if !slices.Contains(s.VMACList, mac) {
			s.VMACList = append(s.VMACList, mac)
		}
	}
	for a := range s.vips {
		s.vipList = append(s.vipList, a)
	}
	slices.SortFunc(s.vipList, func(a, b [4]byte) int { return slices.Compare(a[:], b[:]) })
	slices.Sort(s.Marks)
	m.snap.Store(s)
}

// IsPeer reports whether mac is another director of our VRRP instances.
func (s *Snapshot) IsPeer(mac [6]byte) bool { return slices.Contains(s.PeerMACs, mac) }

// IsVMAC reports whether mac is one of the VRRP virtual MACs; the list is
// a handful at most.
func (s *Snapshot) IsVMAC(mac [6]byte) bool { return slices.Contains(s.VMACList, mac) }
