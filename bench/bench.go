package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// Load names accepted in Config.Loads.
const (
	LoadKeepAlive = "wrk-ka"
	LoadClose     = "wrk-close"
	LoadIperf3    = "iperf3"
	LoadUDP       = "udp"
	// LoadUDPSink is LoadUDP with the real servers dropping the
	// datagrams at their ingress hook: on veth the sender's CPU runs the
	// receiver's stack, so this is what isolates the director's own cost.
	LoadUDPSink = "udp-sink"
)

// DefaultLoads is every load, in the order they run.
var DefaultLoads = []string{LoadKeepAlive, LoadClose, LoadIperf3, LoadUDP, LoadUDPSink}

// Config is one benchmark.
type Config struct {
	Bin      string        // folder holding uvsd and uvsadm
	Runs     int           // runs per load and peer; default 3
	Duration time.Duration // per run; whole seconds, at least 1 s; default 5 s
	Peers    []string      // default DefaultPeers
	Loads    []string      // default DefaultLoads
	// Workers lists uvsd's worker counts: one uvs column each, the first
	// named "uvs", the others "uvs-wN". Default {1}.
	Workers []int
	// UvsdArgs are extra uvsd flags for every uvs column (e.g. --spin).
	UvsdArgs []string
	Log      io.Writer // progress lines; nil: none
}

func (c *Config) defaults() error {
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	c.Duration = max(c.Duration.Round(time.Second), time.Second)
	if len(c.Peers) == 0 {
		c.Peers = DefaultPeers
	}
	if len(c.Loads) == 0 {
		c.Loads = DefaultLoads
	}
	if len(c.Workers) == 0 {
		c.Workers = []int{1}
	}
	for _, l := range c.Loads {
		if !slices.Contains(DefaultLoads, l) {
			return fmt.Errorf("unknown load %q (want %s)", l, strings.Join(DefaultLoads, ", "))
		}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	var err error
	c.Bin, err = filepath.Abs(c.Bin)
	return err
}

// env is the lab shared by every peer.
type env struct {
	cfg   Config
	topo  *lab.NAT
	dir   string
	stops []func() // the current peer's processes and state, newest last
}

func (e *env) stopLater(f func()) { e.stops = append(e.stops, f) }

func (e *env) runStops() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

func (e *env) logf(format string, args ...any) { fmt.Fprintf(e.cfg.Log, format+"\n", args...) }

// Run builds the lab, benchmarks every peer in turn and returns the
// report. A peer that cannot run, or a run that fails, becomes a note;
// only a lab that cannot be built is an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	var peers []*peer
	for _, name := range cfg.Peers {
		if name != PeerUVS {
			p, err := newPeer(name, slices.Max(cfg.Workers))
			if err != nil {
				return nil, err
			}
			peers = append(peers, p)
			continue
		}
		for i, w := range cfg.Workers {
			col := PeerUVS
			if i > 0 || w != 1 {
				col = fmt.Sprintf("%s-w%d", PeerUVS, w)
			}
			p, err := newPeer(col, w)
			if err != nil {
				return nil, err
			}
			peers = append(peers, p)
		}
	}

	start := time.Now()
	rep := &Report{Runs: cfg.Runs, Duration: cfg.Duration}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			rep.Notef("1-min load average at the start: %s on %d CPUs (other work on the machine skews every figure)", f[0], runtime.NumCPU())
		}
	}
	rep.Notef("%s", freshLabNote)
	for _, p := range peers {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		// A fresh lab per peer: the real servers' TIME_WAIT sockets
		// from one peer's close-mode runs (the client reuses its
		// ports) would otherwise meet the next peer's SYNs.
		l, e, err := buildLab(ctx, cfg)
		if err != nil {
			return rep, err
		}
		func() {
			defer l.Close() // a panicking peer must not leave its namespaces
			runPeer(ctx, e, p, rep)
		}()
	}
	fmt.Fprintf(cfg.Log, "done in %.1fs\n", time.Since(start).Seconds())
	return rep, ctx.Err()
}

// freshLabNote says how the peers are kept apart.
const freshLabNote = "every peer runs in a lab of its own, built afresh: no TIME_WAIT, neighbour entry or sysctl of one peer meets the next"

// buildLab builds the NAT lab with its nginx and iperf3 real servers.
func buildLab(ctx context.Context, cfg Config) (*lab.Lab, *env, error) {
	l, err := lab.New("bench")
	if err != nil {
		return nil, nil, err
	}
	e := &env{cfg: cfg, dir: l.Dir("bench")}
	start := time.Now()
	e.logf("building the lab (client, director, 2 nginx + iperf3 real servers)")
	fail := func(err error) (*lab.Lab, *env, error) {
		l.Close()
		return nil, nil, err
	}
	if e.topo, err = lab.NATTopology(l, lab.NATOptions{}); err != nil {
		return fail(fmt.Errorf("lab: %w", err))
	}
	// wrk close makes ~15k connections/s: give the client every port,
	// and let connect() take a port in TIME_WAIT (timestamps keep that
	// safe). A connection whose response wrk reads before the server's
	// FIN arrives closes from the client's side and leaves it TIME_WAIT
	// for 60 s; once a few percent do, connect() has only the odd ports
	// left to search and the load falls to a few hundred conn/s (seen
	// with two uvsd workers, whose replies take the two CPUs).
	for _, kv := range [][2]string{{"net.ipv4.ip_local_port_range", "1024 65535"}, {"net.ipv4.tcp_tw_reuse", "1"}} {
		if err := e.topo.Client.Sysctl(kv[0], kv[1]); err != nil {
			return fail(err)
		}
	}
	for i, rs := range e.topo.RS {
		if _, err := rs.StartNginx(l.Dir(rs.Short()), fmt.Sprintf("rs%d", i+1)); err != nil {
			return fail(err)
		}
		p, err := rs.Start("iperf3", "-s", "-p", "5201")
		if err != nil {
			return fail(err)
		}
		if err := waitListen(ctx, rs, p, 5201); err != nil {
			return fail(err)
		}
	}
	e.logf("lab ready in %.1fs", time.Since(start).Seconds())
	return l, e, nil
}

// runPeer sets p up, runs every load, and restores the director.
func runPeer(ctx context.Context, e *env, p *peer, rep *Report) {
	defer func() {
		if p.teardown != nil {
			p.teardown(ctx, e)
		}
		e.runStops()
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := restoreDirector(c, e); err != nil {
			rep.Notef("%s: restoring the director: %v", p.name, err)
		}
	}()
	if err := restoreDirector(ctx, e); err != nil {
		rep.Notef("%s: restoring the director before setup: %v", p.name, err)
		return
	}
	e.logf("[%s] setting up", p.name)
	err := p.setup(ctx, e)
	var skip errSkip
	if errors.As(err, &skip) {
		e.logf("[%s] %s", p.name, skip)
		rep.Notef("%s: %s", p.name, skip)
		return
	}
	if err == nil {
		err = waitReachable(ctx, e, p)
	}
	if err != nil {
		e.logf("[%s] setup failed: %v", p.name, err)
		rep.Notef("%s: setup failed: %v", p.name, firstLine(err.Error()))
		return
	}
	col := rep.Column(p.name)
	if p.wrkTargets != nil && (slices.Contains(e.cfg.Loads, LoadKeepAlive) || slices.Contains(e.cfg.Loads, LoadClose)) {
		rep.Notef("%s: %s", p.name, splitWrkNote)
	}
	var rss float64
	for _, load := range e.cfg.Loads {
		if (load == LoadUDP || load == LoadUDPSink) && p.udpTargets == nil {
			e.logf("[%s] %s: not applicable", p.name, load)
			continue
		}
		for run := 0; run < e.cfg.Runs; run++ {
			if ctx.Err() != nil {
				return
			}
			var before uvsdSample
			if p.uvsd != nil {
				if before, err = p.uvsd.sample(ctx); err != nil {
					rep.Notef("%s: uvsd sample: %v", p.name, err)
				}
			}
			figs, err := runLoad(ctx, e, p, load, run)
			if err != nil {
				e.logf("[%s] %s run %d/%d failed: %v", p.name, load, run+1, e.cfg.Runs, err)
				rep.Notef("%s: %s run %d: %v", p.name, load, run+1, firstLine(err.Error()))
				continue
			}
			if p.uvsd != nil {
				after, err := p.uvsd.sample(ctx)
				if err == nil && after.packets > before.packets {
					cpu := float64(after.cpuTicks-before.cpuTicks) / clockTicks
					figs = append(figs, figure{loadPrefix(load) + ".cpu", cpu / (float64(after.packets-before.packets) / 1e6)})
					rss = max(rss, float64(after.rss)/(1<<20))
				} else if err != nil {
					rep.Notef("%s: uvsd sample: %v", p.name, err)
				}
			}
			var parts []string
			for _, f := range figs {
				col.Add(f.key, f.value)
				parts = append(parts, f.key+"="+strconv.FormatFloat(f.value, 'f', 2, 64))
			}
			e.logf("[%s] %s run %d/%d: %s", p.name, load, run+1, e.cfg.Runs, strings.Join(parts, " "))
		}
	}
	if rss > 0 {
		col.Add("rss", rss)
	}
}

// figure is one measured value of a run, keyed as the report's metrics.
type figure struct {
	key   string
	value float64
}

func loadPrefix(load string) string {
	switch load {
	case LoadKeepAlive:
		return "ka"
	case LoadClose:
		return "close"
	case LoadUDPSink:
		return "sink"
	}
	return load
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// runLoad runs one load once against p.
func runLoad(ctx context.Context, e *env, p *peer, load string, run int) ([]figure, error) {
	secs := strconv.Itoa(int(e.cfg.Duration / time.Second))
	// Every tool stops by itself after the duration; the context is a
	// backstop for a hung one.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Duration+30*time.Second)
	defer cancel()
	target := p.tcpTarget(e, run)
	switch load {
	case LoadKeepAlive, LoadClose:
		targets := []netip.Addr{target}
		if p.wrkTargets != nil {
			targets = p.wrkTargets(e)
		}
		retransBefore, err := clientRetrans(e)
		if err != nil {
			return nil, err
		}
		cpu0, err := readMachineCPU()
		if err != nil {
			return nil, err
		}
		w, err := runWrk(ctx, e, targets, secs, load == LoadClose)
		if err != nil {
			return nil, err
		}
		cpu1, err := readMachineCPU()
		if err != nil {
			return nil, err
		}
		retransAfter, err := clientRetrans(e)
		if err != nil {
			return nil, err
		}
		if w.Errors > 0 {
			e.logf("[%s] %s: wrk counted %d socket errors or non-2xx/3xx responses", p.name, load, w.Errors)
		}
		pre := loadPrefix(load)
		figs := []figure{{pre + ".rps", w.RPS}, {pre + ".p50", w.P50}, {pre + ".p99", w.P99},
			{pre + ".retrans", float64(retransAfter-retransBefore) / float64(w.Requests) * 1e3}}
		if busy, total := cpu1.busy-cpu0.busy, cpu1.total-cpu0.total; total > 0 && w.Requests > 0 {
			figs = append(figs, figure{pre + ".mcpu", float64(busy) / clockTicks * 1e6 / float64(w.Requests)},
				figure{pre + ".busy", 100 * float64(busy) / float64(total)})
		}
		return figs, nil
	case LoadIperf3:
		out, err := e.topo.Client.Exec(ctx, "iperf3", "-c", target.String(), "-p", "5201", "-t", secs, "-J", "--connect-timeout", "3000").Output()
		bps, perr := ParseIperf3(out)
		if perr != nil {
			return nil, errors.Join(perr, err)
		}
		return []figure{{"iperf3.gbps", bps / 1e9}}, nil
	case LoadUDP:
		return runUDP(ctx, e, p.udpTargets(e), loadPrefix(load))
	case LoadUDPSink:
		undo, err := sinkServers(ctx, e)
		if err != nil {
			return nil, err
		}
		defer undo()
		return runUDP(ctx, e, p.udpTargets(e), loadPrefix(load))
	}
	return nil, fmt.Errorf("unknown load %q", load)
}

// wrkThreads and wrkConns are the wrk load's shape, shared among targets.
const (
	wrkThreads = 2
	wrkConns   = 32
)

// splitWrkNote is the report's note for a peer whose wrk load is split
// among several targets.
const splitWrkNote = "wrk runs one process per real server at once, sharing -t2 -c32; p50/p99 are their request-weighted means"

// runWrk runs wrk against every target at once, each with an equal share
// of the threads and connections, and combines their reports: request
// rates add up; p50 and p99 are the request-weighted means of each
// wrk's percentiles (exact for one target, an approximation for more).
func runWrk(ctx context.Context, e *env, targets []netip.Addr, secs string, closeConns bool) (WrkResult, error) {
	n := len(targets)
	results := make([]WrkResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, t := range targets {
		args := []string{
			"-t" + strconv.Itoa(max(1, wrkThreads/n)),
			"-c" + strconv.Itoa(max(1, wrkConns/n)),
			"-d" + secs + "s", "--latency",
		}
		if closeConns {
			args = append(args, "-H", "Connection: close")
		}
		args = append(args, "http://"+t.String()+"/")
		wg.Go(func() {
			out, err := e.topo.Client.Run(ctx, "wrk", args...)
			if err == nil {
				results[i], err = ParseWrk(out)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return WrkResult{}, err
	}
	var sum WrkResult
	for _, r := range results {
		if r.Requests == 0 || r.RPS == 0 {
			return WrkResult{}, fmt.Errorf("wrk: no requests completed (%d errors)", r.Errors)
		}
		sum.RPS += r.RPS
		sum.Requests += r.Requests
		sum.Errors += r.Errors
		sum.P50 += r.P50 * float64(r.Requests)
		sum.P99 += r.P99 * float64(r.Requests)
	}
	sum.P50 /= float64(sum.Requests)
	sum.P99 /= float64(sum.Requests)
	return sum, nil
}

// sinkTable is the real servers' ingress drop for LoadUDPSink.
const sinkTable = "uvsbench_sink"

// sinkServers makes every real server drop the generator's datagrams at
// its ingress hook, after veth has counted them received; undo removes
// the drop.
func sinkServers(ctx context.Context, e *env) (undo func(), err error) {
	rule := fmt.Sprintf("add table netdev %s { chain in { type filter hook ingress device %s priority -500; udp dport 9 drop; }; }", sinkTable, lab.NATRSDev)
	var done []*lab.NS
	undo = func() {
		for _, rs := range done {
			uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = rs.Run(uctx, "nft", "delete table netdev "+sinkTable)
			cancel()
		}
	}
	for _, rs := range e.topo.RS {
		if out, err := rs.Run(ctx, "nft", rule); err != nil {
			undo()
			return nil, fmt.Errorf("udp sink: %w: %s", err, out)
		}
		done = append(done, rs)
	}
	return undo, nil
}

// runUDP sends the generator's frames to dsts for the duration and counts
// what the real servers' eth0 received meanwhile; pre names the figures.
func runUDP(ctx context.Context, e *env, dsts []netip.Addr, pre string) ([]figure, error) {
	dstMAC, err := nextHopMAC(ctx, e, dsts[0])
	if err != nil {
		return nil, err
	}
	srcMAC, err := e.topo.Client.MAC(lab.NATClientDev)
	if err != nil {
		return nil, err
	}
	frames := UDPFrames(srcMAC, dstMAC, e.topo.ClientIP, dsts, 9, udpFlows)
	before, err := rsRxPackets(e)
	if err != nil {
		return nil, err
	}
	var sent uint64
	var elapsed time.Duration
	err = e.topo.Client.Do(func() error {
		var err error
		sent, elapsed, err = SendFrames(ctx, lab.NATClientDev, frames, e.cfg.Duration)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Let what is still queued in the director arrive: poll until the
	// servers' counters stop moving (bounded).
	var after uint64
	last := before
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = lab.Eventually(wctx, 50*time.Millisecond, func() error {
		n, err := rsRxPackets(e)
		if err != nil {
			return err
		}
		if n != last {
			last = n
			return errors.New("still arriving")
		}
		after = n
		return nil
	})
	if after == 0 {
		after = last
	}
	secs := elapsed.Seconds()
	if secs <= 0 || sent == 0 {
		return nil, errors.New("udp generator sent nothing")
	}
	return []figure{
		{pre + ".rx", float64(after-before) / secs / 1e3},
		{pre + ".tx", float64(sent) / secs / 1e3},
	}, nil
}

// rsRxPackets sums the real servers' eth0 received packets. It reads
// /proc/thread-self/net/dev on a thread inside each server's namespace
// (the same counter as /sys/class/net/eth0/statistics/rx_packets, whose
// sysfs view would need a remount).
func rsRxPackets(e *env) (uint64, error) {
	var sum uint64
	for _, rs := range e.topo.RS {
		err := rs.Do(func() error {
			b, err := os.ReadFile("/proc/thread-self/net/dev")
			if err != nil {
				return err
			}
			n, err := ParseNetDevRx(string(b), lab.NATRSDev)
			sum += n
			return err
		})
		if err != nil {
			return 0, err
		}
	}
	return sum, nil
}

// clientRetrans returns the client namespace's TCP RetransSegs: wrk's
// latencies leave out connection setup, so lost SYNs show only here and
// in the rate.
func clientRetrans(e *env) (uint64, error) {
	var n uint64
	err := e.topo.Client.Do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		n, err = ParseSNMP(string(b), "Tcp", "RetransSegs")
		return err
	})
	return n, err
}

// nextHopMAC returns the MAC the client's kernel resolved for the next
// hop towards dst (dst itself when on-link), after one datagram sent
// through an ordinary socket made it resolve.
func nextHopMAC(ctx context.Context, e *env, dst netip.Addr) (net.HardwareAddr, error) {
	hop := dst
	if !netip.PrefixFrom(e.topo.ClientIP, 24).Masked().Contains(dst) {
		hop = e.topo.DirClientIP
	}
	var mac net.HardwareAddr
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := lab.Eventually(wctx, 100*time.Millisecond, func() error {
		if err := e.topo.Client.Do(func() error {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("uvsbench arp"))
			return err
		}); err != nil {
			return err
		}
		out, err := e.topo.Client.Run(wctx, "ip", "neigh", "show", "to", hop.String(), "dev", lab.NATClientDev)
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "lladdr" {
				mac, err = net.ParseMAC(f[i+1])
				return err
			}
		}
		return fmt.Errorf("%s not resolved yet: %q", hop, strings.TrimSpace(out))
	})
	return mac, err
}

// waitListen polls `ss` in ns until every port has a TCP listener, or p
// exits, or 10 s pass.
func waitListen(ctx context.Context, ns *lab.NS, p *lab.Proc, ports ...int) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := lab.Eventually(wctx, 20*time.Millisecond, func() error {
		if p.Exited() {
			cancel()
			return errors.New("exited: " + p.Output())
		}
		out, err := ns.Run(wctx, "ss", "-Hltn")
		if err != nil {
			return err
		}
		for _, port := range ports {
			if !strings.Contains(out, ":"+strconv.Itoa(port)+" ") {
				return fmt.Errorf("nothing listens on %d yet", port)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("waiting for listeners in %s: %w", ns.Short(), err)
	}
	return nil
}

// waitReachable waits until the client completes a TCP handshake with
// the peer's HTTP target (every run's target), so no load starts cold.
func waitReachable(ctx context.Context, e *env, p *peer) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for run := 0; run < len(e.topo.RSIPs); run++ {
		target := netip.AddrPortFrom(p.tcpTarget(e, run), 80)
		err := lab.Eventually(wctx, 50*time.Millisecond, func() error {
			return e.topo.Client.Do(func() error {
				c, err := net.DialTimeout("tcp", target.String(), 500*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return err
			})
		})
		if err != nil {
			return fmt.Errorf("%s not reachable from the client: %w", target, err)
		}
	}
	return nil
}

// machineCPU is the whole machine's CPU time from /proc/stat, in clock
// ticks: busy (all but idle and iowait) and total, summed over CPUs.
type machineCPU struct{ busy, total uint64 }

// readMachineCPU reads /proc/stat's first line. Every process of the lab
// counts, the peer's kernel work included, which is what tells peers that
// do their forwarding in different places apart.
func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, fmt.Errorf("bench: %w", err)
	}
	return parseMachineCPU(string(b))
}

func parseMachineCPU(stat string) (machineCPU, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("bench: /proc/stat starts %q, want the cpu line", line)
	}
	var c machineCPU
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("bench: /proc/stat field %d %q: %w", i+1, v, err)
		}
		// user nice system idle iowait irq softirq steal guest
		// guest_nice; guest time is already in user and nice.
		if i >= 8 {
			break
		}
		c.total += n
		if i != 3 && i != 4 {
			c.busy += n
		}
	}
	return c, nil
}
