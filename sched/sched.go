package sched

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
)

// ConnCounts are the live connection counters of one real server, shared by
// every worker: IPVS's activeconns, inactconns and persistconns. They change
// once per connection state change, never per packet.
type ConnCounts struct {
	Active   atomic.Int32
	Inactive atomic.Int32
	Persist  atomic.Int32
}

// DestFlags mirror IPVS's IP_VS_DEST_F_* bits that schedulers look at.
type DestFlags uint32

const (
	// DestAvailable is set while the destination is in the service's list.
	DestAvailable DestFlags = 1 << iota
	// DestOverload is set while the destination is above its upper
	// threshold, until it falls below the lower one (IPVS semantics).
	DestOverload
)

// Dest is what a scheduler sees of one real server of a service.
type Dest struct {
	Addr       netip.Addr
	Port       uint16
	Weight     int32 // 0 means quiescent: no new connections.
	Flags      DestFlags
	UThreshold uint32
	LThreshold uint32
	Conns      *ConnCounts
}

// Packet is what a scheduler may look at of the packet that opens a
// connection.
type Packet struct {
	Proto uint8
	Src   netip.AddrPort
	Dst   netip.AddrPort
	// Now is a monotonic clock reading in nanoseconds, for schedulers that
	// expire state (lblc, lblcr).
	Now int64
}

// Flags are the service's scheduler flags (ipvsadm -b / --sched-flags).
type Flags uint32

const (
	FlagSHFallback Flags = 1 << iota // sh-fallback, also mh-fallback
	FlagSHPort                       // sh-port, also mh-port
	FlagOnePacket                    // ops
)

// Scheduler picks a real server for a new connection. A Scheduler is owned
// by one goroutine (one worker), so it needs no locking; it must not
// allocate in Schedule.
type Scheduler interface {
	// Update tells the scheduler the service's current destination list,
	// in IPVS list order: IPVS adds a destination at the head of its list
	// (list_add_rcu in __ip_vs_update_dest), so the most recently added
	// comes first, and an edit keeps the position; picks depend on this
	// order. It is called before the first Schedule and each time the
	// list or a weight changes; dests stays valid and unchanged until the
	// next Update, except for Flags' DestOverload and the Conns counters.
	// Each call stands for one IPVS add, delete or edit; batching several
	// changes into one Update gives IPVS's result for the final list except
	// for wrr's carried-over current weight and mh's last_weight (see
	// wrr.go and mh.go).
	Update(dests []Dest)
	// Schedule returns the index in the dests of the last Update of the
	// chosen destination, or -1 when no destination can take the
	// connection.
	Schedule(dests []Dest, p *Packet) int
}

// ErrUnknown is returned by New for a scheduler name IPVS does not have.
var ErrUnknown = errors.New("unknown scheduler")

// constructors maps IPVS scheduler names to their constructors.
var constructors = map[string]func(Flags) Scheduler{}

func register(name string, f func(Flags) Scheduler) { constructors[name] = f }

// New returns a fresh scheduler of the IPVS scheduler called name.
func New(name string, flags Flags) (Scheduler, error) {
	f, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("scheduler %q: %w", name, ErrUnknown)
	}
	return f(flags), nil
}

// Names lists the scheduler names New accepts.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	return names
}
