package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/sched"
	"github.com/uvs-project/uvs/service"
)

// errNoService is ipvsadm's message, word for word.
//
//lint:ignore ST1005 ipvsadm prints it capitalised
var errNoService = errors.New("No such service")

// connTableSize is what ipvsadm's first line reports as the connection
// hash table size; IPVS's default is 4096 buckets.
const connTableSize = 4096

var protoNames = map[uint8]string{6: "TCP", 17: "UDP"}

func protoNum(s string) (uint8, error) {
	switch strings.ToUpper(s) {
	case "TCP", "":
		return 6, nil
	case "UDP":
		return 17, nil
	}
	return 0, fmt.Errorf("protocol %q not supported", s)
}

var schedFlagNames = []struct {
	name string
	f    sched.Flags
}{
	{"sh-fallback", sched.FlagSHFallback}, {"sh-port", sched.FlagSHPort},
	{"mh-fallback", sched.FlagSHFallback}, {"mh-port", sched.FlagSHPort},
	{"ops", sched.FlagOnePacket},
	// ipvsadm's generic names for the same bits; flag-3 has no
	// scheduler that reads it, and is accepted as IPVS accepts it.
	{"flag-1", sched.FlagSHFallback}, {"flag-2", sched.FlagSHPort}, {"flag-3", 0},
}

func parseSchedFlags(names []string) (sched.Flags, error) {
	var f sched.Flags
	for _, n := range names {
		ok := false
		for _, s := range schedFlagNames {
			if s.name == n {
				f |= s.f
				ok = true
			}
		}
		if !ok {
			return 0, fmt.Errorf("unknown scheduler flag %q", n)
		}
	}
	return f, nil
}

func flagNames(schedName string, f sched.Flags) []string {
	var out []string
	prefix := "sh-"
	if schedName == "mh" {
		prefix = "mh-"
	}
	if f&sched.FlagSHFallback != 0 {
		out = append(out, prefix+"fallback")
	}
	if f&sched.FlagSHPort != 0 {
		out = append(out, prefix+"port")
	}
	if f&sched.FlagOnePacket != 0 {
		out = append(out, "ops")
	}
	return out
}

func svcKey(s *control.Service) (service.Key, error) {
	if s.FWMark != 0 {
		return service.Key{FWMark: s.FWMark}, nil
	}
	p, err := protoNum(s.Proto)
	if err != nil {
		return service.Key{}, err
	}
	if !s.Addr.Is4() {
		return service.Key{}, fmt.Errorf("address %v: only IPv4 is served", s.Addr)
	}
	return service.Key{Proto: p, Addr: s.Addr.As4(), Port: s.Port}, nil
}

func svcConfig(s *control.Service) (service.ServiceConfig, error) {
	k, err := svcKey(s)
	if err != nil {
		return service.ServiceConfig{}, err
	}
	f, err := parseSchedFlags(s.SchedFlags)
	if err != nil {
		return service.ServiceConfig{}, err
	}
	name := s.Sched
	if name == "" {
		name = "wlc" // ipvsadm's default
	}
	return service.ServiceConfig{Key: k, Sched: name, SchedFlags: f, Persistent: s.Persistent, Timeout: s.Timeout, Netmask: s.Netmask}, nil
}

func destConfig(d *control.Dest) (service.DestConfig, error) {
	if !d.Addr.Is4() {
		return service.DestConfig{}, fmt.Errorf("real server %v: only IPv4 is served", d.Addr)
	}
	fwd := service.FwdMasq
	if d.Fwd != "" {
		var err error
		if fwd, err = service.ParseFwd(d.Fwd); err != nil {
			return service.DestConfig{}, err
		}
	}
	if err := implemented(fwd); err != nil {
		return service.DestConfig{}, err
	}
	return service.DestConfig{Addr: d.Addr.As4(), Port: d.Port, Fwd: fwd, Weight: d.Weight, UThreshold: d.UThreshold, LThreshold: d.LThreshold}, nil
}

// Handle answers one uvsadm request.
func (d *Daemon) Handle(ctx context.Context, r *control.Request) *control.Response {
	resp, err := d.handle(ctx, r)
	if err != nil {
		return &control.Response{Err: err.Error()}
	}
	return resp
}

func (d *Daemon) handle(ctx context.Context, r *control.Request) (*control.Response, error) {
	m := d.model
	needSvc := func() (service.Key, error) {
		if r.Service == nil {
			return service.Key{}, fmt.Errorf("%s: no service given", r.Op)
		}
		return svcKey(r.Service)
	}
	switch r.Op {
	case control.OpInfo:
		return &control.Response{Info: &control.Info{Version: "1.2.1", ConnSize: connTableSize}}, nil
	case control.OpList:
		svcs := d.list()
		if r.Service != nil {
			k, err := svcKey(r.Service)
			if err != nil {
				return nil, err
			}
			svcs = slices.DeleteFunc(svcs, func(s control.Service) bool {
				sk, _ := svcKey(&s)
				return sk != k
			})
			if len(svcs) == 0 {
				return nil, errNoService
			}
		}
		return &control.Response{Services: svcs, Info: &control.Info{Version: "1.2.1", ConnSize: connTableSize}}, nil
	case control.OpConns:
		cs, err := d.conns(ctx)
		if err != nil {
			return nil, err
		}
		return &control.Response{Conns: cs}, nil
	case control.OpAddService, control.OpEditSvc:
		if r.Service == nil {
			return nil, fmt.Errorf("%s: no service given", r.Op)
		}
		c, err := svcConfig(r.Service)
		if err != nil {
			return nil, err
		}
		if r.Op == control.OpAddService {
			return &control.Response{}, m.AddService(c)
		}
		return &control.Response{}, m.EditService(c)
	case control.OpDelService:
		k, err := needSvc()
		if err != nil {
			return nil, err
		}
		return &control.Response{}, m.DelService(k)
	case control.OpClear:
		m.Clear()
		return &control.Response{}, nil
	case control.OpAddDest, control.OpEditDest, control.OpDelDest:
		k, err := needSvc()
		if err != nil {
			return nil, err
		}
		if r.Dest == nil {
			return nil, fmt.Errorf("%s: no real server given", r.Op)
		}
		dc, err := destConfig(r.Dest)
		if err != nil {
			return nil, err
		}
		switch r.Op {
		case control.OpAddDest:
			err = m.AddDest(k, dc)
			d.kickResolver()
		case control.OpEditDest:
			err = m.EditDest(k, dc)
		default:
			err = m.DelDest(k, dc.Addr, dc.Port)
		}
		return &control.Response{}, err
	case control.OpZero:
		var sel *service.Key // nil: every service
		if r.Service != nil {
			k, err := svcKey(r.Service)
			if err != nil {
				return nil, err
			}
			sel = &k
		}
		return &control.Response{}, d.zero(sel)
	case control.OpSetTimeout:
		if r.Timeouts == nil {
			return nil, fmt.Errorf("set-timeout: no timeouts given")
		}
		m.SetTimeouts(service.Timeouts{TCP: r.Timeouts.TCP, TCPFin: r.Timeouts.TCPFin, UDP: r.Timeouts.UDP})
		return &control.Response{}, nil
	case control.OpReload:
		if err := d.Reload(); err != nil {
			return nil, fmt.Errorf("reload refused, configuration unchanged: %w", err)
		}
		return &control.Response{}, nil
	case control.OpAddLAddr, control.OpDelLAddr:
		k, err := needSvc()
		if err != nil {
			return nil, err
		}
		return &control.Response{}, d.changeLocalAddr(k, r.LocalAddr, r.Op == control.OpAddLAddr)
	case control.OpGetLAddr:
		svcs, err := d.listLocalAddrs(ctx, r.Service)
		if err != nil {
			return nil, err
		}
		return &control.Response{Services: svcs}, nil
	case control.OpGetTimeout:
		t := m.Snapshot().Timeouts
		return &control.Response{Timeouts: &control.Timeouts{TCP: t.TCP, TCPFin: t.TCPFin, UDP: t.UDP}}, nil
	}
	return nil, fmt.Errorf("unknown op %q", r.Op)
}

// list builds ipvsadm's view: services in order, each with its
// destinations and the counters summed over workers (minus what -Z
// zeroed).
func (d *Daemon) list() []control.Service {
	svcs, dests := d.model.Services()
	st := d.engine.ServiceTotals()
	dt := d.engine.DestTotals()
	d.zmu.Lock()
	defer d.zmu.Unlock()
	out := make([]control.Service, 0, len(svcs))
	for _, s := range svcs {
		cs := controlService(s.Cfg.Key)
		cs.Sched, cs.SchedFlags = s.Cfg.Sched, flagNames(s.Cfg.Sched, s.Cfg.SchedFlags)
		cs.Persistent, cs.Timeout, cs.Netmask = s.Cfg.Persistent, s.Cfg.Timeout, s.Cfg.Netmask
		cs.Stats = toStats(sub(st[s.ID], d.zeroSvc[s.ID]), d.rates.svc[s.ID])
		for _, a := range s.LocalAddrs {
			cs.LocalAddrs = append(cs.LocalAddrs, control.LocalAddr{Addr: netip.AddrFrom4(a)})
		}
		for _, id := range s.Dests {
			dd := dests[id]
			cs.Dests = append(cs.Dests, control.Dest{
				Addr: netip.AddrFrom4(dd.Cfg.Addr), Port: dd.Cfg.Port, Fwd: dd.Cfg.Fwd.String(),
				Weight: dd.Cfg.Weight, UThreshold: dd.Cfg.UThreshold, LThreshold: dd.Cfg.LThreshold,
				ActiveConns:  uint32(max(0, dd.Conns.Active.Load())),
				InactConns:   uint32(max(0, dd.Conns.Inactive.Load())),
				PersistConns: uint32(max(0, dd.Conns.Persist.Load())),
				Stats:        toStats(sub(dt[id], d.zeroDest[id]), d.rates.dest[id]),
			})
		}
		out = append(out, cs)
	}
	return out
}

// svcIndex is the index of service k in svcs, or -1.
func svcIndex(svcs []service.Service, k service.Key) int {
	return slices.IndexFunc(svcs, func(s service.Service) bool { return s.Cfg.Key == k })
}

// controlService names service k as control does: an fwmark service has
// no protocol.
func controlService(k service.Key) control.Service {
	cs := control.Service{Addr: netip.AddrFrom4(k.Addr), Port: k.Port, FWMark: k.FWMark, Proto: protoNames[k.Proto]}
	if k.FWMark != 0 {
		cs.Proto = ""
	}
	return cs
}

func sub(a, b dataplane.Totals) dataplane.Totals {
	return dataplane.Totals{Conns: a.Conns - b.Conns, InPkts: a.InPkts - b.InPkts, OutPkts: a.OutPkts - b.OutPkts,
		InBytes: a.InBytes - b.InBytes, OutBytes: a.OutBytes - b.OutBytes}
}

func toStats(t dataplane.Totals, r rate) control.Stats {
	return control.Stats{Conns: t.Conns, InPkts: t.InPkts, OutPkts: t.OutPkts, InBytes: t.InBytes, OutBytes: t.OutBytes,
		CPS: r.cps, InPPS: r.inpps, OutPPS: r.outpps, InBPS: r.inbps, OutBPS: r.outbps}
}

// zero implements ipvsadm -Z: the dataplane's counters only grow, so the
// daemon remembers what they were and subtracts. With a service (-Z -t
// VIP:PORT) only that service's counters and its real servers' are
// zeroed, as IPVS does; without one, all of them.
func (d *Daemon) zero(k *service.Key) error {
	var st, dt map[uint32]dataplane.Totals
	if d.engine != nil {
		st, dt = d.engine.ServiceTotals(), d.engine.DestTotals()
	}
	svcs, _ := d.model.Services()
	d.zmu.Lock()
	defer d.zmu.Unlock()
	zs, zd, err := zeroed(d.zeroSvc, d.zeroDest, svcs, st, dt, k)
	if err != nil {
		return err
	}
	d.zeroSvc, d.zeroDest = zs, zd
	return nil
}

// zeroed computes -Z's new baselines from the old ones and the current
// totals: all of them when k is nil, else k's service and its
// destinations' (errNoService when there is no such service). The old
// maps are not changed: list may hold them.
func zeroed(oldSvc, oldDest map[uint32]dataplane.Totals, svcs []service.Service, st, dt map[uint32]dataplane.Totals, k *service.Key) (zs, zd map[uint32]dataplane.Totals, err error) {
	if k == nil {
		return maps.Clone(st), maps.Clone(dt), nil
	}
	i := svcIndex(svcs, *k)
	if i < 0 {
		return nil, nil, errNoService
	}
	zs, zd = maps.Clone(oldSvc), maps.Clone(oldDest)
	if zs == nil {
		zs = map[uint32]dataplane.Totals{}
	}
	if zd == nil {
		zd = map[uint32]dataplane.Totals{}
	}
	set := func(m, cur map[uint32]dataplane.Totals, id uint32) {
		if t, ok := cur[id]; ok {
			m[id] = t
		} else {
			delete(m, id)
		}
	}
	set(zs, st, svcs[i].ID)
	for _, id := range svcs[i].Dests {
		set(zd, dt, id)
	}
	return zs, zd, nil
}

// maxConns bounds the connections read from the dataplane for -L -c and
// -G.
const maxConns = 1 << 20

func (d *Daemon) conns(ctx context.Context) ([]control.Conn, error) {
	cs, err := d.engine.Conns(ctx, maxConns)
	if err != nil {
		return nil, err
	}
	now := dataplane.Now()
	out := make([]control.Conn, 0, len(cs))
	for i := range cs {
		c := &cs[i]
		left := max(0, c.Expires-now) / 1e9
		ap := func(a [4]byte, p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.AddrFrom4(a), p) }
		state, proto := c.State.String(), protoNames[c.Orig.Proto]
		dest := ap(c.Reply.Src, c.Reply.SPort)
		if c.IsTemplate() {
			// ipvsadm shows persistence templates as protocol IP.
			state, proto = "NONE", "IP"
		}
		out = append(out, control.Conn{
			Proto:   proto,
			Expire:  uint32(left),
			State:   state,
			Source:  ap(c.Orig.Src, c.Orig.SPort),
			Virtual: ap(c.Orig.Dst, c.Orig.DPort),
			Dest:    dest,
		})
	}
	return out, nil
}

// The LVS-FULLNAT libipvs's messages (ipvs_strerror) for -P and -Q,
// word for word.
var (
	//lint:ignore ST1005 libipvs prints it capitalised
	errLAddrNoService = errors.New("Service not defined")
	//lint:ignore ST1005 libipvs prints it capitalised
	errLAddrExists = errors.New("Local address already exists")
	//lint:ignore ST1005 libipvs prints it capitalised
	errNoLAddr = errors.New("No such Local address")
)

// changeLocalAddr adds a FULLNAT local address to a service (-P,
// appended after the others) or removes one (-Q). Connections already
// using a removed address keep their tuples, but uvs no longer owns the
// address (ARP) nor steers replies to it, so they do not survive it. A
// reload sets the local addresses of the configuration's services to
// its local_address_group again, as it resets their real servers.
func (d *Daemon) changeLocalAddr(k service.Key, a netip.Addr, add bool) error {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return errors.New("no local address given")
	case !a.Is4():
		return fmt.Errorf("local address %v: only IPv4 is served", a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("local address %v is not a unicast address", a)
	}
	// One read-modify-write under the model's lock: concurrent -P/-Q
	// and reloads never lose one another's changes.
	err := d.model.UpdateLocalAddrs(k, func(cur [][4]byte) ([][4]byte, error) {
		j := slices.Index(cur, a.As4())
		switch {
		case add && j >= 0:
			return nil, errLAddrExists
		case add:
			return append(cur, a.As4()), nil
		case j < 0:
			return nil, errNoLAddr
		}
		return slices.Delete(cur, j, j+1), nil
	})
	if errors.Is(err, service.ErrNotFound) {
		return errLAddrNoService
	}
	return err
}

// listLocalAddrs answers -G: the services (one when sel is set) with
// their local addresses and how many tracked FULLNAT connections use
// each.
func (d *Daemon) listLocalAddrs(ctx context.Context, sel *control.Service) ([]control.Service, error) {
	svcs, _ := d.model.Services()
	if sel != nil {
		k, err := svcKey(sel)
		if err != nil {
			return nil, err
		}
		svcs = slices.DeleteFunc(svcs, func(s service.Service) bool { return s.Cfg.Key != k })
		if len(svcs) == 0 {
			return nil, errNoService
		}
	}
	var counts map[lipKey]uint64
	if d.engine != nil && slices.ContainsFunc(svcs, func(s service.Service) bool { return len(s.LocalAddrs) > 0 }) {
		var err error
		if counts, err = d.lipConns(ctx); err != nil {
			return nil, err
		}
	}
	var out []control.Service
	for _, s := range svcs {
		cs := controlService(s.Cfg.Key)
		for _, a := range s.LocalAddrs {
			cs.LocalAddrs = append(cs.LocalAddrs, control.LocalAddr{Addr: netip.AddrFrom4(a), Conns: counts[lipKey{s.ID, a}]})
		}
		out = append(out, cs)
	}
	return out, nil
}

// lipKey names a local address of a service, by the service's ID.
type lipKey struct {
	svc uint32
	lip [4]byte
}

// lipConns counts the tracked FULLNAT connections (not persistence
// templates) by service and local address.
func (d *Daemon) lipConns(ctx context.Context) (map[lipKey]uint64, error) {
	cs, err := d.engine.Conns(ctx, maxConns)
	if err != nil {
		return nil, err
	}
	counts := map[lipKey]uint64{}
	for i := range cs {
		c := &cs[i]
		if !c.IsTemplate() && service.Fwd(c.Fwd) == service.FwdFullNat {
			counts[lipKey{c.Svc, c.Reply.Dst}]++
		}
	}
	return counts, nil
}
