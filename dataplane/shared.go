package dataplane

import (
	"sync"

	"github.com/uvs-project/uvs/sched"
	"github.com/uvs-project/uvs/service"
)

// Schedulers that keep a position or a cache (rr, wrr, lblc, lblcr) must
// see a service's new connections in one sequence to pick what IPVS
// picks: IPVS runs one scheduler per service under the service's
// sched_lock. With several workers such a service's scheduler is shared
// and taken under its mutex, once per new connection, never for a packet
// of a known connection. The others read only the destinations' shared
// counters or hash the packet, and stay per worker, lock-free.

// statefulSched reports whether a scheduler keeps state between picks.
func statefulSched(name string) bool {
	switch name {
	case "rr", "wrr", "lblc", "lblcr":
		return true
	}
	return false
}

// sharedSched is one service's scheduler shared by the workers.
type sharedSched struct {
	mu      sync.Mutex
	name    string
	flags   sched.Flags
	s       sched.Scheduler
	gen     uint64 // snapshot generation of the last Update
	dests   []sched.Dest
	destIDs []uint32
}

// sharedScheds holds the shared schedulers by service ID.
type sharedScheds struct {
	mu sync.Mutex
	m  map[uint32]*sharedSched
}

// get returns the service's shared scheduler, a new one when the
// scheduler or its flags changed.
func (ss *sharedScheds) get(svcID uint32, name string, flags sched.Flags) *sharedSched {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sh, ok := ss.m[svcID]; ok && sh.name == name && sh.flags == flags {
		return sh
	}
	s, err := sched.New(name, flags)
	if err != nil {
		// The model validated the name; a failure here is a bug.
		panic("dataplane: scheduler " + name + ": " + err.Error())
	}
	if ss.m == nil {
		ss.m = map[uint32]*sharedSched{}
	}
	sh := &sharedSched{name: name, flags: flags, s: s}
	ss.m[svcID] = sh
	return sh
}

// pick schedules one new connection. The scheduler follows the newest
// snapshot any worker brought; a worker still on an older one gets a
// destination ID of the newer list, which it checks against its own.
func (sh *sharedSched) pick(snap *service.Snapshot, svc *service.SvcSnap, p *sched.Packet) (uint32, bool) {
	sh.mu.Lock()
	if snap.Gen > sh.gen {
		sh.dests = append(sh.dests[:0], svc.Dests...)
		sh.destIDs = append(sh.destIDs[:0], svc.DestIDs...)
		sh.s.Update(sh.dests)
		sh.gen = snap.Gen
	}
	i := sh.s.Schedule(sh.dests, p)
	var id uint32
	if i >= 0 {
		id = sh.destIDs[i]
	}
	sh.mu.Unlock()
	return id, i >= 0
}
