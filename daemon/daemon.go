package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/nexthop"
	"github.com/uvs-project/uvs/service"
)

// Options are uvsd's command-line settings.
type Options struct {
	ConfigFile  string
	ControlPath string
	Workers     int
	MetricsAddr string // Prometheus /metrics listen address; "" = off
	Spin        time.Duration
	// ExpireNodestConn is IPVS's expire_nodest_conn sysctl.
	ExpireNodestConn bool
	// FWMarkQueue is the NFQUEUE number that brings fwmark services'
	// packets (0: DefaultFWMarkQueue).
	FWMarkQueue uint16
	// Backend is the dataplane backend (dataplane.BackendAFPacket when
	// empty, or dataplane.BackendAFXDP).
	Backend string
	// XSKTx transmits through AF_XDP sockets where the interfaces allow
	// (dataplane.Config.XSKTx).
	XSKTx bool
	Log   *slog.Logger
}

// Daemon is a running uvsd.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	model  *service.Model
	engine *dataplane.Engine

	zmu      sync.Mutex
	zeroSvc  map[uint32]dataplane.Totals
	zeroDest map[uint32]dataplane.Totals
	rates    rates

	resolve chan struct{}

	vrrp  *vrrpManager
	sync  *syncer
	host  *colocated
	marks atomic.Pointer[fwmarkQueue]

	ctx          context.Context
	checksMu     sync.Mutex
	checksCancel context.CancelFunc
	// checkSet is the current checkSet (running, or stopped by a
	// reload in progress), so that a reload can carry its state over
	// and shutdown can run omega's scripts; checkSetMu guards it alone,
	// for readers that do not hold checksMu.
	checkSetMu sync.Mutex
	checkSet   *checkSet
}

// restartChecks replaces the health checks with those of cfg, carrying
// over the state of the real servers that stay.
func (d *Daemon) restartChecks(cfg *config.Config) error {
	next, err := d.planChecks(cfg)
	if err != nil {
		return err
	}
	d.checksMu.Lock()
	defer d.checksMu.Unlock()
	next.migrate(d.stopChecksLocked())
	d.startChecksLocked(next)
	return nil
}

// Check parses and validates a configuration without starting anything
// (uvsd --check, like keepalived -t).
func Check(path string) (*config.Config, error) {
	cfg, err := config.ParseFile(path)
	if err != nil {
		return nil, err
	}
	m := service.NewModel()
	if err := Apply(cfg, m); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Run starts uvsd and blocks until ctx is done or SIGTERM/SIGINT.
func Run(ctx context.Context, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.FWMarkQueue == 0 {
		opts.FWMarkQueue = DefaultFWMarkQueue
	}
	cfg, err := config.ParseFile(opts.ConfigFile)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w.String())
	}
	d := &Daemon{opts: opts, log: log, model: service.NewModel(), resolve: make(chan struct{}, 1)}
	if err := Apply(cfg, d.model); err != nil {
		return err
	}
	d.model.SetExpireNodestConn(opts.ExpireNodestConn)
	var vrrpIfs []string
	for _, vi := range cfg.VRRPInstances {
		vrrpIfs = append(vrrpIfs, vi.Interface)
	}
	ifaces, err := d.interfaces(vrrpIfs)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	// Resolve real servers before traffic arrives, so the first SYNs are
	// not dropped for want of a MAC.
	if !d.resolveAll(ctx) {
		d.kickResolver()
	}

	// VRRP addresses start in standby: only a MASTER owns them.
	if d.vrrp, err = newVRRP(d, cfg); err != nil {
		return err
	}
	if d.vrrp != nil {
		d.model.SetStandby(d.vrrp.allAddrs(), true)
	}
	dcfg := dataplane.Config{Workers: opts.Workers, Spin: opts.Spin, MarkSlots: markSlots, Backend: opts.Backend, XSKTx: opts.XSKTx, Log: log}
	sd := cfg.Global.LVSSyncDaemon
	if sd != nil && (d.vrrp == nil || d.vrrp.syncInst == nil) {
		log.Warn("lvs_sync_daemon needs a vrrp_instance to follow: connection sync is off")
		sd = nil
	}
	if sd != nil {
		dcfg.SyncQueue = syncQueue
	}
	if d.hasLocalDest() {
		if d.host, err = openColocated(ifaces); err != nil {
			if d.vrrp != nil {
				d.vrrp.close()
			}
			return err
		}
		defer d.host.close()
		if err := d.host.setVIPs(d.model.Snapshot().VIPs()); err != nil {
			return err
		}
		dcfg.Host = d.host.inj
		if d.vrrp != nil {
			d.vrrp.onPeers = func(macs [][6]byte) {
				if err := d.host.setPeers(macs); err != nil {
					log.Error("host guard peers", "err", err)
				}
			}
		}
	}
	d.engine, err = dataplane.New(dcfg, d.model, ifaces)
	if err != nil {
		if d.vrrp != nil {
			d.vrrp.close()
		}
		return err
	}
	defer d.engine.Close()
	if sd != nil {
		if d.sync, err = newSyncer(d, cfg); err != nil {
			d.vrrp.close()
			return err
		}
		d.vrrp.onSync = d.sync.setMaster
	}

	l, err := control.Listen(opts.ControlPath)
	if err != nil {
		return err
	}
	defer os.Remove(opts.ControlPath)

	d.ctx = ctx
	if err := d.restartChecks(cfg); err != nil {
		return err
	}

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); d.engine.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := control.Serve(ctx, l, d, log); err != nil {
			log.Error("control", "err", err)
		}
	}()
	go func() { defer wg.Done(); d.resolver(ctx) }()
	go func() { defer wg.Done(); d.estimate(ctx) }()
	go d.reloads(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); d.runMarks(ctx) }()
	if d.sync != nil {
		wg.Add(1)
		go func() { defer wg.Done(); d.sync.run(ctx) }()
	}
	if d.vrrp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); d.vrrp.run(ctx) }()
	}
	if opts.MetricsAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.serveMetrics(ctx, opts.MetricsAddr); err != nil {
				log.Error("metrics", "err", err)
			}
		}()
	}

	names := make([]string, len(ifaces))
	for i, f := range ifaces {
		names[i] = f.Name
	}
	log.Info("uvsd started", "interfaces", names, "services", len(d.model.Snapshot().Services), "control", opts.ControlPath)
	wg.Wait()
	// omega's notify_down and quorum_down scripts run before exit.
	d.stopChecks()
	log.Info("uvsd stopped")
	return nil
}

// ifaceOf is the dataplane's view of an Ethernet interface.
func ifaceOf(ifc net.Interface) dataplane.Iface {
	return dataplane.Iface{Index: ifc.Index, Name: ifc.Name, MAC: [6]byte(ifc.HardwareAddr), MTU: ifc.MTU}
}

// interfaces finds the interfaces that serve the VIPs, the owned
// addresses and the real servers, from the routing table.
func (d *Daemon) interfaces(named []string) ([]dataplane.Iface, error) {
	s := d.model.Snapshot()
	local := localAddrs()
	var addrs []netip.Addr
	for a := range s.Owned {
		// A VIP on this host's loopback (a director that is also a
		// real server) says nothing about where its clients are: the
		// VRRP instance's interface does.
		if !local[a] {
			addrs = append(addrs, netip.AddrFrom4(a))
		}
	}
	for _, dd := range s.Dests {
		if !dd.Removed && !local[dd.Addr] {
			addrs = append(addrs, netip.AddrFrom4(dd.Addr))
		}
	}
	seen := map[int]bool{}
	var out []dataplane.Iface
	for _, a := range addrs {
		h, err := nexthop.Route(a)
		if err != nil {
			return nil, err
		}
		if seen[h.Ifindex] {
			continue
		}
		seen[h.Ifindex] = true
		var mac [6]byte
		if len(h.IfMAC) != 6 {
			return nil, fmt.Errorf("interface %s serving %v has no Ethernet address", h.IfName, a)
		}
		copy(mac[:], h.IfMAC)
		out = append(out, dataplane.Iface{Index: h.Ifindex, Name: h.IfName, MAC: mac, MTU: h.IfMTU})
	}
	for _, name := range named {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		if seen[ifc.Index] || len(ifc.HardwareAddr) != 6 {
			continue
		}
		seen[ifc.Index] = true
		out = append(out, ifaceOf(*ifc))
	}
	if len(out) == 0 {
		// Started empty, as ipvsadm users do before `uvsadm -R`: the
		// services to come may be on any interface, so take them all.
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("interfaces: %w", err)
		}
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagLoopback == 0 && ifc.Flags&net.FlagUp != 0 && len(ifc.HardwareAddr) == 6 {
				out = append(out, ifaceOf(ifc))
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no virtual service, owned address or Ethernet interface: nothing to serve")
	}
	return out, nil
}

// localAddrs are the host's own IPv4 addresses: a real server at one of
// them is this host.
func localAddrs() map[[4]byte]bool {
	out := map[[4]byte]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				out[ip.Unmap().As4()] = true
			}
		}
	}
	return out
}

func (d *Daemon) kickResolver() {
	select {
	case d.resolve <- struct{}{}:
	default:
	}
}

// resolveAll finds the next hop of every real server, concurrently. It
// reports whether every server was resolved.
func (d *Daemon) resolveAll(ctx context.Context) bool {
	s := d.model.Snapshot()
	seen := map[[4]byte]bool{}
	var wg sync.WaitGroup
	var failed atomic.Bool
	local := localAddrs()
	for _, dd := range s.Dests {
		if dd.Removed || seen[dd.Addr] {
			continue
		}
		seen[dd.Addr] = true
		if local[dd.Addr] {
			d.model.SetNextHop(dd.Addr, service.NextHop{Local: true, Valid: true})
			continue
		}
		wg.Add(1)
		go func(a [4]byte) {
			defer wg.Done()
			h, err := nexthop.Resolve(netip.AddrFrom4(a), time.Second)
			if err != nil {
				d.log.Warn("real server unresolved", "addr", netip.AddrFrom4(a), "err", err)
				failed.Store(true)
				return
			}
			var nh service.NextHop
			nh.Ifindex = int32(h.Ifindex)
			copy(nh.MAC[:], h.MAC)
			if h.Src.Is4() {
				nh.Src = h.Src.As4()
			}
			nh.Valid = true
			d.model.SetNextHop(a, nh)
		}(dd.Addr)
	}
	wg.Wait()
	_ = ctx
	return !failed.Load()
}

// resolver re-resolves real servers every few seconds, and at once when a
// server is added, so a changed MAC is picked up.
func (d *Daemon) resolver(ctx context.Context) {
	const every, retry = 5 * time.Second, 200 * time.Millisecond
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.resolve:
		}
		next := every
		if !d.resolveAll(ctx) {
			// An unresolved server gets no connections: try again
			// soon rather than at the next refresh.
			next = retry
		}
		t.Reset(next)
	}
}

// reloads re-reads the configuration on SIGHUP.
func (d *Daemon) reloads(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := d.Reload(); err != nil {
				d.log.Error("reload refused, configuration unchanged", "err", err)
			} else {
				d.log.Info("configuration reloaded")
			}
		}
	}
}

// Reload re-reads the config file and applies only the difference. The
// real servers that stay keep their health: one its checks took out of
// the pool stays out, as keepalived carries the checker state over.
func (d *Daemon) Reload() error {
	cfg, err := config.ParseFile(d.opts.ConfigFile)
	if err != nil {
		return err
	}
	// Validate on a scratch model first: a broken config changes nothing.
	if err := Apply(cfg, service.NewModel()); err != nil {
		return err
	}
	next, err := d.planChecks(cfg)
	if err != nil {
		return err
	}
	d.checksMu.Lock()
	defer d.checksMu.Unlock()
	// Stop the checks first, so that the model gets the configuration
	// with their verdicts applied (Sync of next's view).
	prev := d.stopChecksLocked()
	next.migrate(prev)
	err = Sync(next.view(cfg), d.model)
	d.kickResolver()
	if d.host != nil {
		if err := d.host.setVIPs(d.model.Snapshot().VIPs()); err != nil {
			d.log.Error("host guard VIPs", "err", err)
		}
	}
	if d.ctx == nil || d.ctx.Err() != nil {
		return err
	}
	if prev != nil {
		go runScripts(d.log, prev.removedScripts(next), notifyTimeout)
	}
	d.startChecksLocked(next)
	return err
}
