package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/service"
)

// Iface is one interface the engine captures on.
type Iface struct {
	Index int
	Name  string
	MAC   [6]byte
	MTU   int
}

// Config sizes the engine.
type Config struct {
	Workers      int        // default 1
	Batch        int        // frames per port per round, default 64
	Ring         RingConfig // default DefaultRing
	ConnCapacity int        // connections per worker, default 1<<20
	// SyncQueue, when positive, gives each worker a connection sync
	// queue of that many records (connsync.Queue) and an import channel.
	SyncQueue int
	// Host, when set, takes the packets of connections to a real server
	// that is this host (a director that is also a real server).
	Host HostStack
	// Spin is how long a worker busy-polls its rings after traffic
	// before sleeping in poll(2); 0 never spins.
	Spin time.Duration
	// MarkSlots, when positive, gives each worker a ring of that many
	// slots for packets of fwmark services (InjectMarked).
	MarkSlots int
	// Backend is BackendAFPacket (default) or BackendAFXDP.
	Backend string
	// XSK sizes the AF_XDP sockets (default DefaultXSK).
	XSK XSKConfig
	// XSKTx, with the afpacket backend, transmits through a
	// transmit-only AF_XDP socket where one can be had: worker i on
	// transmit queue i of each interface that has one. Frames leave by
	// it without sendmmsg's per-message work; GSO super-frames and
	// jumbo frames still go by sendmmsg. Receiving is unchanged: no XDP
	// program is attached.
	XSKTx bool
	Log   *slog.Logger
}

// The dataplane backends. AF_PACKET works on every interface. AF_XDP adds,
// on each interface, an XDP program that redirects the frames uvs forwards
// to an AF_XDP socket on queue 0 (zero-copy where the driver has it), while
// ARP, the host's own traffic and other queues stay on the AF_PACKET path.
// It takes one worker: XDP delivers a frame to the socket of the queue it
// arrived on, so it cannot steer both legs of a connection to one worker.
// XDP frames carry no offload metadata: a local sender's partial checksum
// on a veth is recognised and finished in software (partial.go), and
// attaching the program turns off the veth peer's TSO, so no super-frames
// come this way.
const (
	BackendAFPacket = "afpacket"
	BackendAFXDP    = "afxdp"
)

// HostStack hands an IPv4 packet, checksums complete, to this host's own
// stack (hostlocal.Injector). Write must be safe for concurrent use.
type HostStack interface {
	Write(ipPacket []byte) error
}

// Engine runs the workers.
type Engine struct {
	cfg     Config
	model   *service.Model
	ifaces  []Iface
	workers []*worker
	wg      sync.WaitGroup
	steered steering
	// syncMaster is whether the workers send connection changes to the
	// backup; the VRRP state of the sync instance sets it.
	syncMaster atomic.Bool

	// InjectMarked's state, its caller's alone but for the counters.
	markSnap  *service.Snapshot
	markSteer steering
	markWoken []bool
	markStats struct{ full, badIface, invalid atomic.Uint64 }

	// The afxdp backend's map and programs (nil with afpacket).
	xdpMatch   *xdpMatch
	xdpFilters []*xdpFilter
}

// New opens every worker's ports. With more than one worker, the ports of
// an interface form one PACKET_FANOUT group.
func New(cfg Config, model *service.Model, ifaces []Iface) (*Engine, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Ring.FrameSize == 0 {
		cfg.Ring = DefaultRing
	}
	if cfg.ConnCapacity <= 0 {
		cfg.ConnCapacity = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(ifaces) == 0 {
		return nil, errors.New("dataplane: no interfaces to capture on")
	}
	switch cfg.Backend {
	case "":
		cfg.Backend = BackendAFPacket
	case BackendAFPacket:
	case BackendAFXDP:
		if cfg.Workers != 1 {
			return nil, fmt.Errorf("dataplane: the %s backend takes one worker, not %d", BackendAFXDP, cfg.Workers)
		}
	default:
		return nil, fmt.Errorf("dataplane: unknown backend %q (%s or %s)", cfg.Backend, BackendAFPacket, BackendAFXDP)
	}
	e := &Engine{cfg: cfg, model: model, ifaces: ifaces, markWoken: make([]bool, cfg.Workers)}
	shared := &sharedScheds{}
	// Fanout group IDs are per network namespace; derive them from the
	// PID so two daemons in one namespace do not join each other's group.
	base := uint16(os.Getpid() * 7)
	for wi := 0; wi < cfg.Workers; wi++ {
		w := &worker{
			id:     wi,
			log:    cfg.Log.With("worker", wi),
			model:  model,
			batch:  cfg.Batch,
			ct:     conntrack.New(cfg.ConnCapacity, rand.Uint64()),
			reqs:   make(chan func(*worker), 1),
			spin:   int64(cfg.Spin),
			sync:   &e.syncMaster,
			host:   cfg.Host,
			shared: shared,
		}
		if cfg.SyncQueue > 0 {
			w.syncQ = connsync.NewQueue(cfg.SyncQueue)
			w.importQ = make(chan importRec, cfg.SyncQueue)
		}
		for ii, ifc := range ifaces {
			var fo *Fanout
			if cfg.Workers > 1 {
				fo = &Fanout{ID: base + uint16(ii), Mode: unix.PACKET_FANOUT_CBPF}
			}
			p, err := openPort(ifc.Index, ifc.MAC, cfg.Ring, cfg.Batch, fo)
			if p != nil {
				p.mtu = ifc.MTU
				if p.mtu == 0 {
					p.mtu = 1500
				}
			}
			if err != nil {
				e.Close()
				return nil, fmt.Errorf("worker %d, interface %s: %w", wi, ifc.Name, err)
			}
			w.ports = append(w.ports, p)
			w.pfds = append(w.pfds, unix.PollFd{Fd: int32(p.fd), Events: unix.POLLIN})
			switch {
			case cfg.Backend == BackendAFXDP:
				if p.xsk, err = openXSK(ifc.Index, 0, cfg.XSK, true); err != nil {
					e.Close()
					return nil, fmt.Errorf("worker %d, interface %s: %w", wi, ifc.Name, err)
				}
				w.pfds = append(w.pfds, unix.PollFd{Fd: int32(p.xsk.fd), Events: unix.POLLIN})
			case cfg.XSKTx:
				p.xsk = openXSKTx(cfg, wi, ifc)
			}
		}
		if cfg.MarkSlots > 0 {
			r, err := newMarkRing(cfg.MarkSlots)
			if err != nil {
				e.Close()
				return nil, fmt.Errorf("worker %d: mark ring: %w", wi, err)
			}
			w.marks = r
			w.pfds = append(w.pfds, unix.PollFd{Fd: int32(r.wake), Events: unix.POLLIN})
		}
		w.nworkers = cfg.Workers
		w.adopt(model.Snapshot())
		e.workers = append(e.workers, w)
	}
	if cfg.Workers > 1 {
		if err := e.steer(steeringOf(model.Snapshot())); err != nil {
			e.Close()
			return nil, err
		}
	}
	if cfg.Backend == BackendAFXDP {
		if err := e.openXDP(); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// openXSKTx opens worker wi's transmit-only AF_XDP socket on ifc's
// transmit queue wi, or returns nil (sendmmsg then) when the interface
// has no such queue or AF_XDP is not to be had.
func openXSKTx(cfg Config, wi int, ifc Iface) *xsk {
	l, err := netlink.LinkByIndex(ifc.Index)
	if err != nil {
		cfg.Log.Warn("af_xdp transmit off", "iface", ifc.Name, "worker", wi, "err", err)
		return nil
	}
	if q := l.Attrs().NumTxQueues; wi >= q {
		if wi == q {
			cfg.Log.Info("af_xdp transmit: no queue for this worker and the next, sendmmsg instead", "iface", ifc.Name, "worker", wi, "tx_queues", q)
		}
		return nil
	}
	x, err := openXSK(ifc.Index, wi, cfg.XSK, false)
	if err != nil {
		cfg.Log.Warn("af_xdp transmit off, sendmmsg instead", "iface", ifc.Name, "worker", wi, "err", err)
		return nil
	}
	cfg.Log.Debug("af_xdp transmit", "iface", ifc.Name, "worker", wi, "queue", wi, "socket", x.modeName())
	return x
}

// openXDP fills the match map for the current snapshot, then attaches the
// redirect program to every interface, so that no frame is redirected
// before the worker's socket is in place.
func (e *Engine) openXDP() error {
	var err error
	if e.xdpMatch, err = newXDPMatch(); err != nil {
		return err
	}
	if err := e.syncXDP(e.model.Snapshot()); err != nil {
		return err
	}
	for _, p := range e.workers[0].ports {
		name := ""
		for _, ifc := range e.ifaces {
			if ifc.Index == p.ifindex {
				name = ifc.Name
			}
		}
		f, err := attachXDP(p.ifindex, name, e.xdpMatch, map[int]int{0: p.xsk.fd}, p.xsk.maxFrame())
		if err != nil {
			return err
		}
		e.xdpFilters = append(e.xdpFilters, f)
		e.cfg.Log.Info("af_xdp attached", "iface", name, "xdp", f.mode, "socket", p.xsk.modeName())
	}
	return nil
}

// syncXDP writes the match map for snapshot s and the host's addresses.
func (e *Engine) syncXDP(s *service.Snapshot) error {
	host, err := hostAddrs()
	if err != nil {
		return err
	}
	return e.xdpMatch.apply(xdpWant(s, host))
}

// steer (re)installs the steering program for st on every interface's
// fanout group.
func (e *Engine) steer(st steering) error {
	prog, err := steerProgram(st, false)
	if err != nil {
		return err
	}
	for _, p := range e.workers[0].ports {
		if err := attachSteering(p, prog); err != nil {
			return err
		}
	}
	e.steered = st
	return nil
}

// watch keeps what is derived from the model outside the workers in step
// with it: the fanout steering program (more than one worker), and the XDP
// match map (afxdp), which also follows the host's addresses, read every
// second. A failed attach or write is tried again at the next tick.
func (e *Engine) watch(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var steered, synced *service.Snapshot
	var hostRead time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := e.model.Snapshot()
		// Only a new snapshot can change the steering.
		if len(e.workers) > 1 && s != steered {
			if st := steeringOf(s); !st.equal(&e.steered) {
				if err := e.steer(st); err != nil {
					e.cfg.Log.Error("steering", "err", err)
				} else {
					steered = s
				}
			} else {
				steered = s
			}
		}
		if e.xdpMatch != nil && (s != synced || time.Since(hostRead) >= time.Second) {
			if err := e.syncXDP(s); err != nil {
				e.cfg.Log.Error("xdp match map", "err", err)
			} else {
				synced, hostRead = s, time.Now()
			}
		}
	}
}

// Run runs the workers until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	if len(e.workers) > 1 || e.xdpMatch != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.watch(ctx)
		}()
	}
	for _, w := range e.workers {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			w.run(ctx)
		}()
	}
	e.wg.Wait()
}

// Close releases the ports. Call it after Run returned.
func (e *Engine) Close() {
	// The programs first: none may redirect to a closed socket.
	for _, f := range e.xdpFilters {
		f.close()
	}
	e.xdpFilters = nil
	if e.xdpMatch != nil {
		_ = e.xdpMatch.m.Close()
		e.xdpMatch = nil
	}
	for _, w := range e.workers {
		for _, p := range w.ports {
			p.close()
		}
		if w.marks != nil {
			w.marks.close()
		}
	}
}

// ServiceTotals sums the per-service counters of all workers, by service
// ID; DestTotals likewise by destination ID.
func (e *Engine) ServiceTotals() map[uint32]Totals { return e.totals(false) }

// DestTotals sums the per-destination counters of all workers.
func (e *Engine) DestTotals() map[uint32]Totals { return e.totals(true) }

func (e *Engine) totals(dest bool) map[uint32]Totals {
	out := map[uint32]Totals{}
	for _, w := range e.workers {
		p := w.stats.svc.Load()
		if dest {
			p = w.stats.dest.Load()
		}
		if p == nil {
			continue
		}
		for i := range *p {
			t := out[uint32(i)]
			t.addFrom(&(*p)[i])
			if t != (Totals{}) {
				out[uint32(i)] = t
			}
		}
	}
	return out
}

// Counters sums the dataplane's own counters.
func (e *Engine) Counters() Counters {
	c := Counters{Drops: map[string]uint64{}}
	for _, w := range e.workers {
		s := &w.stats
		c.RxFrames += s.rxFrames.load()
		c.TxFrames += s.txFrames.load()
		c.Ignored += s.ignored.load()
		c.ARPReplies += s.arpReplies.load()
		c.EchoReplies += s.echoReplies.load()
		c.ICMPErrors += s.icmpErrors.load()
		c.Misdirected += s.misdirected.load()
		c.FromPeer += s.fromPeer.load()
		c.LocalOut += s.localOut.load()
		c.SyncOut += s.syncOut.load()
		c.SyncDropped += s.syncDropped.load()
		c.SyncIn += s.syncIn.load()
		c.SyncNoService += s.syncNoService.load()
		c.SyncRefused += s.syncRefused.load()
		c.MarkIn += s.markIn.load()
		c.MarkDup += s.markDup.load()
		c.MarkDeferred += s.markDeferred.load()
		c.Reserved += s.reserved.load()
		var xskTx uint64
		for _, p := range w.ports {
			c.RingOverruns += p.ringOverruns()
			if p.xsk != nil {
				st := p.xsk.stats()
				c.XSK.add(st)
				xskTx += st.Tx
			}
		}
		c.PerWorkerXSKTx = append(c.PerWorkerXSKTx, xskTx)
		c.PerWorkerRx = append(c.PerWorkerRx, s.rxFrames.load())
		for r := range numDropReasons {
			if v := s.drops[r].load(); v != 0 {
				c.Drops[r.String()] += v
			}
		}
	}
	return c
}

// Conns copies up to max connection entries from every worker's table.
// Each worker copies its own table between batches.
func (e *Engine) Conns(ctx context.Context, max int) ([]conntrack.Conn, error) {
	var out []conntrack.Conn
	for _, w := range e.workers {
		done := make(chan []conntrack.Conn, 1)
		fn := func(w *worker) {
			// FULLNAT reservations are not connections.
			done <- slices.DeleteFunc(w.ct.AppendSnapshot(nil, max), func(c conntrack.Conn) bool { return c.IsReserved() })
		}
		select {
		case w.reqs <- fn:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case cs := <-done:
			out = append(out, cs...)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// Now is the engine's monotonic clock, for turning connection expiry
// times into seconds left.
func Now() int64 { return monotime() }

// SetSyncMaster turns the sending of connection changes on or off.
func (e *Engine) SetSyncMaster(on bool) { e.syncMaster.Store(on) }

// SyncQueues are the workers' outgoing sync queues (nil without
// Config.SyncQueue), for the sync sender to drain.
func (e *Engine) SyncQueues() []*connsync.Queue {
	var qs []*connsync.Queue
	for _, w := range e.workers {
		if w.syncQ != nil {
			qs = append(qs, w.syncQ)
		}
	}
	return qs
}

// Import hands received connections to the workers that own them, as the
// steering program would bring their packets: by the client endpoint, or
// FULLNAT's local endpoint. clientIf names the interface behind which a
// virtual address's clients are. It reports how many were refused because
// a worker's import channel was full.
func (e *Engine) Import(recs []connsync.Record, clientIf func(vaddr [4]byte) int32) (refused int) {
	n := uint32(len(e.workers))
	st := steeringOf(e.model.Snapshot())
	for i := range recs {
		r := &recs[i]
		a, port := r.CAddr, r.CPort
		if r.LPort != 0 {
			a, port = r.LAddr, r.LPort
		}
		w := e.workers[st.key(a, port)%n]
		if w.importQ == nil {
			refused++
			continue
		}
		select {
		case w.importQ <- importRec{rec: *r, clientIf: clientIf(r.VAddr)}:
		default:
			refused++
		}
	}
	return refused
}

// SyncSnapshot copies up to max live connections and persistence
// templates of every worker as sync records, for a bulk dump to a backup
// that asked for the whole table, or a periodic refresh. Each worker
// copies a slice of its table per request, between batches, so that a
// table of millions never stalls its packets for long.
func (e *Engine) SyncSnapshot(ctx context.Context, max int) ([]connsync.Record, error) {
	const chunk = 1 << 15
	var out []connsync.Record
	type part struct {
		recs []connsync.Record
		next int
		end  bool
	}
	for _, w := range e.workers {
		for pos := 0; len(out) < max; {
			done := make(chan part, 1)
			at := pos
			fn := func(w *worker) {
				cs, next := w.ct.AppendSnapshotAt(nil, at, chunk)
				now := monotime()
				p := part{next: next, end: next >= w.ct.Cap()}
				for i := range cs {
					if c := &cs[i]; !c.Expired(now) && !c.IsReserved() {
						var r connsync.Record
						w.toRecord(&r, c, now)
						p.recs = append(p.recs, r)
					}
				}
				done <- p
			}
			select {
			case w.reqs <- fn:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			var p part
			select {
			case p = <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			out = append(out, p.recs...)
			if p.end {
				break
			}
			pos = p.next
		}
	}
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}
