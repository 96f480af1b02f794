package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// Peer names accepted in Config.Peers.
const (
	PeerKernel  = "kernel"
	PeerNFT     = "nft"
	PeerHAProxy = "haproxy"
	PeerIPVS    = "ipvs"
	PeerUVS     = "uvs"
	// PeerUVSFNAT is uvs in FULLNAT mode on the same topology: the real
	// servers see a local address of uvs's, not the client.
	PeerUVSFNAT = "uvs-fnat"
	// PeerUVSDR is uvs in direct-routing mode: the servers (prepared by
	// uvsrs) answer the client directly, through the director's kernel
	// forwarding, so only the client's half of the traffic crosses uvsd.
	PeerUVSDR = "uvs-dr"
	// PeerUVSXDP is uvs in NAT mode on its afxdp backend (one worker):
	// an XDP program redirects the forwarded frames to AF_XDP sockets.
	// Attaching it turns off the veth peers' TSO, so bulk TCP reaches it
	// as MTU-sized frames.
	PeerUVSXDP = "uvs-xdp"
	// PeerUVSMmsg is uvs in NAT mode transmitting by sendmmsg only
	// (--xsk-tx=false), for comparison with the default AF_XDP transmit;
	// not among the default peers.
	PeerUVSMmsg = "uvs-mmsg"
)

// DefaultPeers is every peer, in the order they run.
var DefaultPeers = []string{PeerKernel, PeerNFT, PeerHAProxy, PeerIPVS, PeerUVS, PeerUVSXDP, PeerUVSFNAT, PeerUVSDR}

// errSkip marks a peer that cannot run here; its message is the reason.
type errSkip string

func (e errSkip) Error() string { return string(e) }

// peer is one way of balancing the lab's traffic, set up in the director
// namespace and undone by teardown (after which restoreDirector runs
// anyway).
type peer struct {
	name string
	// setup configures the director; an errSkip skips the peer.
	setup    func(ctx context.Context, e *env) error
	teardown func(ctx context.Context, e *env)
	// tcpTarget is the address iperf3 connects to in run (0-based), and
	// the address whose port 80 must answer before the loads start.
	tcpTarget func(e *env, run int) netip.Addr
	// wrkTargets are the addresses wrk loads; with more than one, one wrk
	// per address runs at once with an equal share of the threads and
	// connections. Nil: the tcpTarget.
	wrkTargets func(e *env) []netip.Addr
	// udpTargets are the generator's destinations; nil: no UDP load.
	udpTargets func(e *env) []netip.Addr
	// uvsd is the running daemon, for the uvs peer's extra figures.
	uvsd *uvsdProc
}

func vip(e *env, _ int) netip.Addr       { return e.topo.VIP }
func vipOnly(e *env) []netip.Addr        { return []netip.Addr{e.topo.VIP} }
func rsByRun(e *env, run int) netip.Addr { return e.topo.RSIPs[run%len(e.topo.RSIPs)] }
func allRS(e *env) []netip.Addr          { return e.topo.RSIPs }
func directorCmd(ctx context.Context, e *env, name string, args ...string) error {
	_, err := e.topo.Director.Run(ctx, name, args...)
	return err
}

// newPeer returns the peer called name; workers applies to uvs.
func newPeer(name string, workers int) (*peer, error) {
	switch {
	case name == PeerKernel:
		return &peer{name: name, setup: kernelSetup, tcpTarget: rsByRun, wrkTargets: allRS, udpTargets: allRS}, nil
	case name == PeerNFT:
		return &peer{name: name, setup: nftSetup, tcpTarget: vip, udpTargets: vipOnly}, nil
	case name == PeerHAProxy:
		return &peer{name: name, setup: haproxySetup, tcpTarget: vip}, nil
	case name == PeerIPVS:
		return &peer{name: name, setup: ipvsSetup, tcpTarget: vip, udpTargets: vipOnly}, nil
	case name == PeerUVSFNAT:
		return uvsPeer(name, max(workers, 1), "FNAT"), nil
	case name == PeerUVSDR:
		return drPeer(name, max(workers, 1)), nil
	case name == PeerUVSXDP:
		return uvsPeer(name, 1, "NAT", "--backend", "afxdp"), nil
	case name == PeerUVSMmsg:
		return uvsPeer(name, max(workers, 1), "NAT", "--xsk-tx=false"), nil
	case name == PeerUVS || strings.HasPrefix(name, PeerUVS+"-w"):
		if n, ok := strings.CutPrefix(name, PeerUVS+"-w"); ok {
			w, err := strconv.Atoi(n)
			if err != nil || w < 1 {
				return nil, fmt.Errorf("peer %q: want uvs-wN with N ≥ 1", name)
			}
			workers = w
		}
		return uvsPeer(name, max(workers, 1), "NAT"), nil
	}
	return nil, fmt.Errorf("unknown peer %q (want %s)", name, strings.Join(DefaultPeers, ", "))
}

// uvsPeer is uvsd with the given workers and forwarding method (lb_kind),
// and extra flags.
func uvsPeer(name string, workers int, kind string, extra ...string) *peer {
	p := &peer{name: name, tcpTarget: vip, udpTargets: vipOnly}
	p.setup = func(ctx context.Context, e *env) error {
		u, err := startUVSD(ctx, e, name, workers, kind, extra)
		p.uvsd = u
		return err
	}
	p.teardown = func(ctx context.Context, e *env) {
		if p.uvsd != nil {
			_ = p.uvsd.proc.Stop()
			p.uvsd = nil
		}
	}
	return p
}

// drPeer is uvsd in DR mode. The lab is two-armed, so the servers' replies
// (from the VIP, which they hold on lo) return through the director's
// kernel: it forwards for this peer, with a forward-chain drop of traffic
// to the VIP, which uvsd alone may handle.
func drPeer(name string, workers int) *peer {
	p := uvsPeer(name, workers, "DR")
	var rs []*lab.Proc
	start := p.setup
	p.setup = func(ctx context.Context, e *env) error {
		uvsrs := filepath.Join(e.cfg.Bin, "uvsrs")
		if _, err := os.Stat(uvsrs); err != nil {
			return errSkip("skipped: " + uvsrs + " not built (make build)")
		}
		for _, ns := range e.topo.RS {
			pr, err := ns.Start(uvsrs, "--vip", e.topo.VIP.String(), "--mode", "dr")
			if err != nil {
				return err
			}
			rs = append(rs, pr)
		}
		for _, ns := range e.topo.RS {
			err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
				_, err := ns.Run(ctx, "sh", "-c", "ip -4 addr show dev lo | grep -q "+e.topo.VIP.String())
				return err
			})
			if err != nil {
				return fmt.Errorf("uvsrs did not set up %s: %w", ns.Name(), err)
			}
		}
		rules := fmt.Sprintf("table ip uvsdr {\n chain vipdrop {\n  type filter hook forward priority 0; policy accept;\n  ip daddr %s drop\n }\n}\n", e.topo.VIP)
		path := filepath.Join(e.dir, "nft-dr.conf")
		if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
			return err
		}
		for _, step := range []func() error{
			func() error { return directorCmd(ctx, e, "nft", "-f", path) },
			func() error { return e.topo.Director.Sysctl("net.ipv4.conf.all.rp_filter", "0") },
			func() error { return e.topo.Director.Sysctl("net.ipv4.conf."+lab.NATDirServerDev+".rp_filter", "0") },
			func() error { return e.topo.Director.Sysctl("net.ipv4.ip_forward", "1") },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return start(ctx, e)
	}
	stop := p.teardown
	p.teardown = func(ctx context.Context, e *env) {
		stop(ctx, e)
		for _, pr := range rs {
			_ = pr.Stop()
		}
		rs = nil
	}
	return p
}

// restoreDirector puts the director namespace back as the lab built it:
// no VIP on d0, no nftables rules, ip_forward=0, and the client without
// its route to the servers' network. Processes are the peers' own to stop.
func restoreDirector(ctx context.Context, e *env) error {
	// The deletes fail harmlessly when there is nothing to delete.
	_, _ = e.topo.Director.Run(ctx, "ip", "addr", "del", e.topo.VIP.String()+"/32", "dev", lab.NATDirClientDev)
	_, _ = e.topo.Client.Run(ctx, "ip", "route", "del", serverNet(e))
	return errors.Join(
		directorCmd(ctx, e, "nft", "flush", "ruleset"),
		e.topo.Director.Sysctl("net.ipv4.ip_forward", "0"),
	)
}

// serverNet is the real servers' /24.
func serverNet(e *env) string {
	return netip.PrefixFrom(e.topo.DirServerIP, 24).Masked().String()
}

// kernelSetup: the director routes; the client reaches the servers
// through it, by their own addresses.
func kernelSetup(ctx context.Context, e *env) error {
	if err := e.topo.Director.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	return e.topo.Client.Route(serverNet(e), "via", e.topo.DirClientIP.String())
}

// addVIP gives the director's kernel the VIP (nft and haproxy only).
func addVIP(e *env) error {
	return e.topo.Director.Addr(lab.NATDirClientDev, e.topo.VIP.String()+"/32")
}

const nftRules = `table ip uvsbench {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s tcp dport 80 dnat to jhash ip saddr . tcp sport mod 2 map { 0 : %[2]s, 1 : %[3]s }
		ip daddr %[1]s tcp dport 5201 dnat to jhash ip saddr mod 2 map { 0 : %[2]s, 1 : %[3]s }
		ip daddr %[1]s udp dport 9 dnat to jhash ip saddr . udp sport mod 2 map { 0 : %[2]s, 1 : %[3]s }
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
	}
}
`

// nftSetup: the kernel owns the VIP and DNATs it with jhash.
func nftSetup(ctx context.Context, e *env) error {
	if err := addVIP(e); err != nil {
		return err
	}
	if err := e.topo.Director.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	path := filepath.Join(e.dir, "nft.conf")
	rules := fmt.Sprintf(nftRules, e.topo.VIP, e.topo.RSIPs[0], e.topo.RSIPs[1])
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		return err
	}
	return directorCmd(ctx, e, "nft", "-f", path)
}

const haproxyConf = `global
	maxconn 4096
	log stderr format raw local0 err

defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s

frontend http
	bind %[1]s:80
	default_backend http

backend http
	balance roundrobin
	server rs1 %[2]s:80
	server rs2 %[3]s:80

frontend iperf3
	bind %[1]s:5201
	default_backend iperf3

backend iperf3
	balance source
	server rs1 %[2]s:5201
	server rs2 %[3]s:5201
`

// haproxySetup: haproxy in mode tcp on the VIP (TCP only).
func haproxySetup(ctx context.Context, e *env) error {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return errSkip("skipped: haproxy not installed")
	}
	if err := addVIP(e); err != nil {
		return err
	}
	path := filepath.Join(e.dir, "haproxy.cfg")
	conf := fmt.Sprintf(haproxyConf, e.topo.VIP, e.topo.RSIPs[0], e.topo.RSIPs[1])
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := e.topo.Director.Start("haproxy", "-db", "-f", path)
	if err != nil {
		return err
	}
	e.stopLater(func() { _ = p.Stop() })
	return waitListen(ctx, e.topo.Director, p, 80, 5201)
}

// ipvsSetup runs kernel IPVS where the module exists; on kernels without
// it (this project's lab machines) the peer is skipped.
func ipvsSetup(ctx context.Context, e *env) error {
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		// Dry run only: whether the module exists, loading nothing.
		if err := exec.CommandContext(ctx, "modprobe", "-n", "ip_vs").Run(); err != nil {
			return errSkip("skipped: no ip_vs module")
		}
	}
	if _, err := exec.LookPath("ipvsadm"); err != nil {
		return errSkip("skipped: ipvsadm not installed")
	}
	if err := e.topo.Director.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	vip := e.topo.VIP.String()
	cmds := [][]string{
		{"-A", "-t", vip + ":80", "-s", "rr"},
		{"-A", "-t", vip + ":5201", "-s", "sh"},
		{"-A", "-u", vip + ":9", "-s", "rr"},
	}
	for _, rs := range e.topo.RSIPs {
		cmds = append(cmds,
			[]string{"-a", "-t", vip + ":80", "-r", rs.String() + ":80", "-m"},
			[]string{"-a", "-t", vip + ":5201", "-r", rs.String() + ":5201", "-m"},
			[]string{"-a", "-u", vip + ":9", "-r", rs.String() + ":9", "-m"})
	}
	e.stopLater(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.topo.Director.Run(c, "ipvsadm", "-C")
	})
	if err := addVIP(e); err != nil {
		return err
	}
	for _, c := range cmds {
		if err := directorCmd(ctx, e, "ipvsadm", c...); err != nil {
			return err
		}
	}
	return nil
}

// uvsdConf is the uvs peer's keepalived.conf: the same services as the
// other peers.
const uvsdConf = `! uvsbench
virtual_server %[1]s 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %[2]s 80 {
        weight 1
    }
    real_server %[3]s 80 {
        weight 1
    }
}

! iperf3's control and data connections must reach the same server.
virtual_server %[1]s 5201 {
    lb_algo sh
    lb_kind NAT
    protocol TCP
    real_server %[2]s 5201 {
        weight 1
    }
    real_server %[3]s 5201 {
        weight 1
    }
}

virtual_server %[1]s 9 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server %[2]s 9 {
        weight 1
    }
    real_server %[3]s 9 {
        weight 1
    }
}
`

// uvsdProc is a running uvsd and how to query it.
type uvsdProc struct {
	proc   *lab.Proc
	pid    int // uvsd's own process (Proc.Pid, checked by /proc/PID/comm)
	uvsadm string
	sock   string
}

// startUVSD runs uvsd in the director namespace and waits until uvsadm
// answers.
func startUVSD(ctx context.Context, e *env, name string, workers int, kind string, extra []string) (*uvsdProc, error) {
	uvsd := filepath.Join(e.cfg.Bin, "uvsd")
	uvsadm := filepath.Join(e.cfg.Bin, "uvsadm")
	for _, b := range []string{uvsd, uvsadm} {
		if _, err := os.Stat(b); err != nil {
			return nil, errSkip("skipped: " + b + " not built (make build)")
		}
	}
	dir := filepath.Join(e.dir, fmt.Sprintf("uvsd-%s-w%d", name, workers))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	text := fmt.Sprintf(uvsdConf, e.topo.VIP, e.topo.RSIPs[0], e.topo.RSIPs[1])
	if kind == "FNAT" {
		// Local addresses on the servers' link, owned by uvsd.
		// A local endpoint stays taken towards its server for IPVS's
		// TIME_WAIT (2 min) after its connection: the close load's
		// ~15k conn/s over three runs needs more than the 2 × 64k
		// ports per server of two addresses.
		text = "local_address_group bench {\n    198.19.0.200-207\n}\n" +
			strings.ReplaceAll(text, "lb_kind NAT", "lb_kind FNAT\n    laddr_group_name bench")
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "uvsd.sock")
	args := append([]string{"-f", conf, "--control", sock, "--workers", strconv.Itoa(workers)}, extra...)
	args = append(args, e.cfg.UvsdArgs...)
	p, err := e.topo.Director.Start(uvsd, args...)
	if err != nil {
		return nil, err
	}
	u := &uvsdProc{proc: p, pid: p.Pid(), uvsadm: uvsadm, sock: sock}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = lab.Eventually(wctx, 50*time.Millisecond, func() error {
		if p.Exited() {
			cancel()
			return errors.New("uvsd exited")
		}
		_, err := u.adm(wctx, "-L", "-n")
		return err
	})
	if err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("uvsd did not come up: %w\n%s", err, p.Output())
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", u.pid)); strings.TrimSpace(string(comm)) != "uvsd" {
		_ = p.Stop()
		return nil, fmt.Errorf("uvsd: process %d is %q, not uvsd", u.pid, strings.TrimSpace(string(comm)))
	}
	return u, nil
}

// adm runs uvsadm against the daemon's control socket.
func (u *uvsdProc) adm(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, u.uvsadm, append([]string{"--control", u.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("uvsadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// uvsdSample is a snapshot of uvsd's CPU time and forwarded packets.
type uvsdSample struct {
	cpuTicks, packets, rss uint64
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture uvs targets.
const clockTicks = 100

func (u *uvsdProc) sample(ctx context.Context) (uvsdSample, error) {
	var s uvsdSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", u.pid))
	if err != nil {
		return s, err
	}
	if s.cpuTicks, err = ParseProcStatCPU(string(stat)); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.pid))
	if err != nil {
		return s, err
	}
	if s.rss, err = ParseVmRSS(string(status)); err != nil {
		return s, err
	}
	out, err := u.adm(ctx, "-L", "-n", "--stats", "--exact")
	if err != nil {
		return s, err
	}
	s.packets, err = ParseStatsPackets(out)
	return s, err
}
