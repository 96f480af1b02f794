package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

func TestDecide(t *testing.T) {
	denied := fmt.Errorf("ip netns add: exit status 1 (%w)", os.ErrPermission)
	broken := errors.New("ip: not found")
	ok := func() error { return nil }
	for _, tc := range []struct {
		name  string
		euid  int
		ci    string
		probe func() error
		want  verdict
	}{
		{"root", 0, "", ok, proceed},
		{"root under CI", 0, "true", ok, proceed},
		{"not root", 1000, "", ok, skip},
		{"not root under CI", 1000, "true", ok, fail},
		{"not root, CI not true", 1000, "1", ok, skip},
		{"root, namespaces refused", 0, "", func() error { return denied }, skip},
		{"root, namespaces refused under CI", 0, "true", func() error { return denied }, fail},
		{"root, ip broken", 0, "", func() error { return broken }, fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probed := false
			got, msg := decide(tc.euid, tc.ci, func() error { probed = true; return tc.probe() })
			if got != tc.want {
				t.Fatalf("verdict %d (%q), want %d", got, msg, tc.want)
			}
			if got == skip && !strings.HasPrefix(msg, skipMessage) {
				t.Errorf("skip message %q, want it to start with %q", msg, skipMessage)
			}
			if tc.euid != 0 && probed {
				t.Error("probed namespaces as non-root")
			}
		})
	}
}

func TestRunPermissionError(t *testing.T) {
	_, err := run(context.Background(), "sh", "-c", "echo 'RTNETLINK answers: Operation not permitted' >&2; exit 2")
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err %v, want os.ErrPermission", err)
	}
	_, err = run(context.Background(), "sh", "-c", "echo 'Cannot find device' >&2; exit 1")
	if err == nil || errors.Is(err, os.ErrPermission) {
		t.Fatalf("err %v, want a plain failure", err)
	}
	if !strings.Contains(err.Error(), "Cannot find device") {
		t.Errorf("err %v does not carry the output", err)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	err := Eventually(context.Background(), time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	last := errors.New("still not")
	err = Eventually(ctx, time.Millisecond, func() error { return last })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, last) {
		t.Fatalf("err %v, want deadline exceeded carrying the last error", err)
	}
}

// TestNewUnprivileged needs no root: an empty lab is a prefix and a folder.
func TestNewUnprivileged(t *testing.T) {
	a, err := New("a/b c")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Prefix() == b.Prefix() || len(a.Prefix()) != len("uvs")+6 || !strings.HasPrefix(a.Prefix(), "uvs") {
		t.Errorf("prefixes %q, %q: want distinct uvs<6 hex>", a.Prefix(), b.Prefix())
	}
	d := a.Dir("x/y")
	for _, l := range []*Lab{a, b} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s survived Close: %v", d, err)
	}
	if _, err := a.NS("x"); !errors.Is(err, ErrClosed) {
		t.Errorf("NS after Close: %v, want ErrClosed", err)
	}
}

func TestBigDeterministic(t *testing.T) {
	// An independent rebuild of /big from its seed.
	b := make([]byte, bigSize)
	r := rand.New(rand.NewPCG(42, 7))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	sum := sha256.Sum256(b)
	if got, want := BigSHA256(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("BigSHA256 %s, want %s", got, want)
	}
}

// netnsList returns the namespaces `ip netns list` shows.
func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix+"-") {
			out = append(out, n)
		}
	}
	return out
}

// ping fails t unless one ping from ns to to is answered (pingOnce).
func ping(t *testing.T, ns *NS, to netip.Addr) {
	t.Helper()
	if err := pingOnce(ns, to); err != nil {
		t.Error(err)
	}
}

// pingOnce pings to once from ns, waiting at most 1 s for the reply.
func pingOnce(ns *NS, to netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := ns.Run(ctx, "ping", "-c1", "-W1", to.String()); err != nil {
		return fmt.Errorf("%s → %v: %w\n%s", ns.Short(), to, err, out)
	}
	return nil
}

func curl(ns *NS, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return ns.Run(ctx, "curl", append([]string{"-sS", "--max-time", "15"}, args...)...)
}

func TestPrivilegedNATTopology(t *testing.T) {
	start := time.Now()
	l := NewT(t)
	topo, err := NATTopology(l, NATOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("topology built in %v", time.Since(start).Round(time.Millisecond))

	t.Run("names", func(t *testing.T) {
		all := []*NS{topo.Client, topo.Director, topo.Switch}
		all = append(all, topo.RS...)
		got := withPrefix(netnsList(t), l.Prefix())
		if len(got) != len(all) {
			t.Errorf("ip netns list shows %v, want %d namespaces", got, len(all))
		}
		for _, ns := range all {
			if !strings.HasPrefix(ns.Name(), l.Prefix()+"-") {
				t.Errorf("namespace %q lacks the prefix %q", ns.Name(), l.Prefix())
			}
		}
		if topo.Switch.Short() != "sw" || topo.RS[1].Short() != "rs2" {
			t.Errorf("short names %q, %q", topo.Switch.Short(), topo.RS[1].Short())
		}
	})

	t.Run("addresses", func(t *testing.T) {
		bench := netip.MustParsePrefix("198.18.0.0/15")
		for _, a := range append([]netip.Addr{topo.ClientIP, topo.DirClientIP, topo.DirServerIP, topo.VIP, topo.GatewayIP}, topo.RSIPs...) {
			if !bench.Contains(a) {
				t.Errorf("%v outside %v", a, bench)
			}
		}
		if len(topo.RS) != 2 || topo.RSIPs[0] != netip.MustParseAddr("198.19.0.11") || topo.GatewayIP != topo.DirServerIP {
			t.Errorf("RS %v, gateway %v", topo.RSIPs, topo.GatewayIP)
		}
		ctx := context.Background()
		for _, ns := range append([]*NS{topo.Client, topo.Director}, topo.RS...) {
			out, err := ns.Run(ctx, "ip", "-o", "addr", "show")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, topo.VIP.String()+"/") {
				t.Errorf("VIP assigned in %s:\n%s", ns.Short(), out)
			}
		}
		out, err := topo.Director.Run(ctx, "sysctl", "-n", "net.ipv4.ip_forward")
		if err != nil || strings.TrimSpace(out) != "0" {
			t.Errorf("director ip_forward %q (%v), want 0", out, err)
		}
		out, err = topo.Client.Run(ctx, "ip", "route", "show", "default")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("client default route %q (%v), want none", out, err)
		}
		out, err = topo.RS[0].Run(ctx, "ip", "route", "show", "default")
		if err != nil || !strings.Contains(out, "via 198.19.0.1 ") {
			t.Errorf("rs1 default route %q (%v), want via 198.19.0.1", out, err)
		}
	})

	t.Run("ping", func(t *testing.T) {
		ping(t, topo.Client, topo.DirClientIP)
		ping(t, topo.Director, topo.ClientIP)
		for i, rs := range topo.RS {
			ping(t, rs, topo.DirServerIP)
			ping(t, topo.Director, topo.RSIPs[i])
		}
		// The director does not forward: the client cannot reach a real server.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if out, err := topo.Client.Run(ctx, "ping", "-c1", "-W1", topo.RSIPs[0].String()); err == nil {
			t.Errorf("client reached %v through a non-forwarding director:\n%s", topo.RSIPs[0], out)
		}
	})

	t.Run("MAC", func(t *testing.T) {
		mac, err := topo.Director.MAC(NATDirClientDev)
		if err != nil {
			t.Fatal(err)
		}
		out, err := topo.Director.Run(context.Background(), "ip", "-o", "link", "show", NATDirClientDev)
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 || !strings.Contains(out, "link/ether "+mac.String()) {
			t.Errorf("MAC %v, ip link says %s", mac, out)
		}
	})

	var ngs []*Nginx
	for i, rs := range topo.RS {
		t0 := time.Now()
		ng, err := rs.StartNginx(l.Dir(rs.Name()), fmt.Sprintf("rs%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("nginx %s up in %v", ng.Name(), time.Since(t0).Round(time.Millisecond))
		ngs = append(ngs, ng)
	}

	t.Run("nginx names", func(t *testing.T) {
		for i, ip := range topo.RSIPs {
			for _, path := range []string{"/", "/any/path"} {
				out, err := curl(topo.Director, "http://"+ip.String()+path)
				if want := fmt.Sprintf("rs%d\n", i+1); err != nil || out != want {
					t.Errorf("GET %v%s: %q (%v), want %q", ip, path, out, err, want)
				}
			}
		}
	})

	t.Run("nginx big", func(t *testing.T) {
		out, err := curl(topo.Director, "--fail", "-o", "/dev/null", "-w", "%{size_download}", "http://"+topo.RSIPs[0].String()+"/big")
		if err != nil || out != fmt.Sprint(bigSize) {
			t.Fatalf("size %q (%v), want %d", out, err, bigSize)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err = topo.Director.Run(ctx, "sh", "-c", "curl -sS --fail --max-time 15 http://"+topo.RSIPs[1].String()+"/big | sha256sum")
		if f := strings.Fields(out); err != nil || len(f) == 0 || f[0] != ngs[1].BigSHA256() {
			t.Fatalf("sha256 %q (%v), want %s", out, err, ngs[1].BigSHA256())
		}
	})

	t.Run("nginx health", func(t *testing.T) {
		url := "http://" + topo.RSIPs[0].String() + "/health"
		code := func() string {
			out, err := curl(topo.Director, "-o", "/dev/null", "-w", "%{http_code}", url)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		if c := code(); c != "200" {
			t.Fatalf("healthy: %s, want 200", c)
		}
		if err := ngs[0].SetHealthy(false); err != nil {
			t.Fatal(err)
		}
		if c := code(); c != "500" {
			t.Fatalf("unhealthy: %s, want 500", c)
		}
		if err := ngs[0].SetHealthy(true); err != nil {
			t.Fatal(err)
		}
		if c := code(); c != "200" {
			t.Fatalf("healthy again: %s, want 200", c)
		}
	})

	t.Run("nginx access log", func(t *testing.T) {
		addrs, err := ngs[0].AccessLogRemoteAddrs()
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) == 0 {
			t.Fatal("empty access log")
		}
		for _, a := range addrs {
			if a != topo.DirServerIP.String() {
				t.Errorf("logged client %q, want %v", a, topo.DirServerIP)
			}
		}
	})

	t.Run("nginx stop and start", func(t *testing.T) {
		url := "http://" + topo.RSIPs[0].String() + "/"
		if err := ngs[0].Start(); err == nil {
			t.Fatal("second Start of a running nginx succeeded")
		}
		t0 := time.Now()
		if err := ngs[0].Stop(); err != nil {
			t.Fatal(err)
		}
		t.Logf("nginx stopped in %v", time.Since(t0).Round(time.Millisecond))
		if out, err := curl(topo.Director, url); err == nil {
			t.Fatalf("stopped nginx answered %q", out)
		}
		if err := ngs[0].Start(); err != nil {
			t.Fatal(err)
		}
		if out, err := curl(topo.Director, url); err != nil || out != "rs1\n" {
			t.Fatalf("restarted nginx: %q (%v)", out, err)
		}
	})

	t.Run("UDP echo", func(t *testing.T) {
		for i, rs := range topo.RS {
			stop, err := rs.StartUDPEcho(5353)
			if err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				defer stop() // rs1's is left to Lab.Close
			}
		}
		for i, ip := range topo.RSIPs {
			got, err := topo.Director.UDPAsk(netip.AddrPortFrom(ip, 5353), "hello")
			if want := fmt.Sprintf("rs%d:hello", i+1); err != nil || got != want {
				t.Errorf("echo from %v: %q (%v), want %q", ip, got, err, want)
			}
		}
	})

	t.Run("processes", func(t *testing.T) {
		p, err := topo.Client.Start("sh", "-c", "echo out; echo err >&2")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if out := p.Output(); !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
			t.Errorf("output %q", out)
		}
		// A process that ignores SIGTERM is killed after the grace period.
		p, err = topo.Client.Start("sh", "-c", "trap '' TERM; echo ready; sleep 60")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Eventually(ctx, 10*time.Millisecond, func() error {
			if !strings.Contains(p.Output(), "ready") {
				return errors.New("not ready")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < stopGrace || d > stopGrace+2*time.Second {
			t.Errorf("Stop took %v, want about %v", d, stopGrace)
		}
		if !p.Exited() {
			t.Error("not exited after Stop")
		}
		// Its namespace is the client's.
		out, err := topo.Client.Run(context.Background(), "ip", "-o", "link", "show", NATClientDev)
		if err != nil || !strings.Contains(out, NATClientDev+"@") {
			t.Errorf("ip link in client: %q (%v)", out, err)
		}
		// This one is left running for Lab.Close to stop.
		if _, err := topo.Director.Start("sleep", "60"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Do restores threads", func(t *testing.T) {
		root, err := netns.GetFromPath("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		for range 20 {
			err := topo.Client.Do(func() error {
				if _, err := net.InterfaceByName(NATClientDev); err != nil {
					return fmt.Errorf("inside: %w", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// Every thread the runtime hands out is back in the test's namespace.
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for range 64 {
			wg.Go(func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cur, err := netns.Get()
				if err != nil {
					errc <- err
					return
				}
				defer cur.Close()
				if !cur.Equal(root) {
					errc <- errors.New("thread left in a lab namespace")
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		want := errors.New("fn failed")
		if err := topo.Client.Do(func() error { return want }); !errors.Is(err, want) {
			t.Errorf("Do returned %v, want fn's error", err)
		}
	})

	t0 := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab closed in %v", time.Since(t0).Round(time.Millisecond))
	if left := withPrefix(netnsList(t), l.Prefix()); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := topo.Client.Start("true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

// TestPrivilegedNATOptions builds two labs side by side (no collisions),
// with three real servers behind the floating gateway and offloads off.
func TestPrivilegedNATOptions(t *testing.T) {
	a, b := NewT(t), NewT(t)
	opts := NATOptions{RealServers: 3, Gateway: FloatingGateway, Offloads: []string{"tso", "off", "gro", "off"}}
	var topos [2]*NAT
	var errs [2]error
	var wg sync.WaitGroup
	for i, l := range []*Lab{a, b} {
		wg.Go(func() { topos[i], errs[i] = NATTopology(l, opts) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, topo := range topos {
		if len(topo.RS) != 3 || topo.RSIPs[2] != netip.MustParseAddr("198.19.0.13") || topo.GatewayIP != FloatingGateway {
			t.Fatalf("RS %v, gateway %v", topo.RSIPs, topo.GatewayIP)
		}
		out, err := topo.RS[2].Run(context.Background(), "ip", "route", "show", "default")
		if err != nil || !strings.Contains(out, "via "+FloatingGateway.String()+" ") {
			t.Errorf("rs3 default route %q (%v)", out, err)
		}
		out, err = topo.Director.Run(context.Background(), "ethtool", "-k", NATDirClientDev)
		if err != nil || !strings.Contains(out, "tcp-segmentation-offload: off") {
			t.Errorf("director offloads (%v):\n%s", err, out)
		}
		ping(t, topo.RS[2], topo.DirServerIP)
	}
	if _, err := NATTopology(a, NATOptions{Gateway: netip.MustParseAddr("10.0.0.1")}); err == nil {
		t.Error("gateway outside the server segment accepted")
	}
}

// TestPrivilegedCloseAfterFailure: what a failed build leaves, Close removes.
func TestPrivilegedCloseAfterFailure(t *testing.T) {
	l := NewT(t)
	ns, err := l.NS("x")
	if err != nil {
		t.Fatal(err)
	}
	ghost := &NS{lab: l, name: l.Prefix() + "-missing"}
	if err := l.Veth(ns, "v0", ghost, "v1"); err == nil {
		t.Fatal("veth into a missing namespace succeeded")
	}
	if err := ns.Addr("nodev", "198.18.0.1/24"); err == nil || !strings.Contains(err.Error(), "nodev") {
		t.Fatalf("Addr on a missing device: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := withPrefix(netnsList(t), l.Prefix()); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}
