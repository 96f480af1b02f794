package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

// TestVRRPConfParses needs no root: every director's keepalived.conf,
// with every option, is one uvsd reads as meant.
func TestVRRPConfParses(t *testing.T) {
	topo, err := newVRRPLab(VRRPOptions{Directors: 3, RealServers: 3})
	if err != nil {
		t.Fatal(err)
	}
	notify := t.TempDir()
	for n, o := range []VRRPConfOptions{
		{},
		{Version: 3, AdvertInt: "0.1", NotifyDir: notify, Sync: true, VirtualServers: true},
		{Version: 2, AdvertInt: "1", Priority: 120, AuthPass: "uvslab", NoPreempt: true, UseVMAC: true, VirtualServers: true},
		{Version: 3, PreemptDelay: "2", Sync: true},
	} {
		for i := range topo.DirClientIPs {
			t.Run(fmt.Sprintf("%s/options%d", dirName(i), n), func(t *testing.T) {
				text := topo.KeepalivedConf(i, o)
				c, err := config.Parse("keepalived.conf", strings.NewReader(text))
				if err != nil {
					t.Fatalf("%v\n%s", err, text)
				}
				for _, w := range c.Warnings {
					t.Errorf("warning: %v", w)
				}
				if c.Global.RouterID != dirName(i) {
					t.Errorf("router_id %q, want %q", c.Global.RouterID, dirName(i))
				}
				if wantV := max(o.Version, 2); c.Global.VRRPVersion != wantV {
					t.Errorf("vrrp_version %d, want %d", c.Global.VRRPVersion, wantV)
				}
				wantPrio := o.Priority
				if wantPrio == 0 {
					wantPrio = 150 - 50*i
				}
				wantState := "BACKUP"
				if i == 0 && !o.NoPreempt && o.PreemptDelay == "" {
					wantState = "MASTER"
				}
				wantAdvert := time.Second
				if o.AdvertInt == "0.1" {
					wantAdvert = 100 * time.Millisecond
				}
				if len(c.VRRPInstances) != 2 {
					t.Fatalf("%d vrrp_instances, want 2", len(c.VRRPInstances))
				}
				for k, want := range []struct {
					name, dev string
					vrid      uint8
					addr      netip.Prefix
				}{
					{VRRPInstanceVIP, VRRPDirClientDev, VRRPRouterIDVIP, netip.MustParsePrefix("198.18.0.100/24")},
					{VRRPInstanceGW, VRRPDirServerDev, VRRPRouterIDGW, netip.MustParsePrefix("198.19.0.254/24")},
				} {
					vi := c.VRRPInstances[k]
					if vi.Name != want.name || vi.Interface != want.dev || vi.VirtualRouterID != want.vrid ||
						!slices.Equal(vi.VirtualIPAddresses, []netip.Prefix{want.addr}) {
						t.Errorf("instance %d: %s on %s VRID %d %v, want %s on %s VRID %d %v", k,
							vi.Name, vi.Interface, vi.VirtualRouterID, vi.VirtualIPAddresses, want.name, want.dev, want.vrid, want.addr)
					}
					if int(vi.Priority) != wantPrio || vi.State != wantState || vi.AdvertInt != wantAdvert {
						t.Errorf("%s: priority %d, state %s, advert_int %v; want %d, %s, %v", vi.Name, vi.Priority, vi.State, vi.AdvertInt, wantPrio, wantState, wantAdvert)
					}
					if vi.NoPreempt != o.NoPreempt || vi.UseVMAC != o.UseVMAC || (o.PreemptDelay == "2") != (vi.PreemptDelay == 2*time.Second) {
						t.Errorf("%s: nopreempt %v, use_vmac %v, preempt_delay %v", vi.Name, vi.NoPreempt, vi.UseVMAC, vi.PreemptDelay)
					}
					if o.AuthPass != "" && (vi.AuthType != "PASS" || vi.AuthPass != o.AuthPass) || o.AuthPass == "" && vi.AuthType != "" {
						t.Errorf("%s: authentication %q %q", vi.Name, vi.AuthType, vi.AuthPass)
					}
					if wantNotify := o.NotifyDir != ""; (vi.Notify != "") != wantNotify {
						t.Errorf("%s: notify %q", vi.Name, vi.Notify)
					}
				}
				if len(c.VRRPSyncGroups) != 1 || c.VRRPSyncGroups[0].Name != VRRPSyncGroup ||
					!slices.Equal(c.VRRPSyncGroups[0].Group, []string{VRRPInstanceVIP, VRRPInstanceGW}) {
					t.Errorf("sync groups %+v", c.VRRPSyncGroups)
				}
				if d := c.Global.LVSSyncDaemon; o.Sync != (d != nil) {
					t.Errorf("lvs_sync_daemon %+v, want one: %v", d, o.Sync)
				} else if d != nil && (d.Interface != VRRPDirServerDev || d.Instance != VRRPInstanceGW || d.SyncID != VRRPSyncID) {
					t.Errorf("lvs_sync_daemon %+v, want %s %s id %d", d, VRRPDirServerDev, VRRPInstanceGW, VRRPSyncID)
				}
				svcs := c.ExpandedServices()
				if !o.VirtualServers {
					if len(svcs) != 0 {
						t.Errorf("%d services, want none", len(svcs))
					}
					return
				}
				if len(c.VirtualServers) != 2 {
					t.Fatalf("%d virtual servers, want 2", len(c.VirtualServers))
				}
				for k, want := range []struct {
					proto string
					port  uint16
				}{{"TCP", VRRPHTTPPort}, {"UDP", VRRPUDPPort}} {
					vs := c.VirtualServers[k]
					if vs.Addr != topo.VIP || vs.Port != want.port || vs.Protocol != want.proto || vs.LBKind != "NAT" || vs.LBAlgo != "rr" || len(vs.RealServers) != len(topo.RSIPs) {
						t.Errorf("virtual server %d: %+v", k, vs)
						continue
					}
					for j, rs := range vs.RealServers {
						if rs.Addr != topo.RSIPs[j] || rs.Port != want.port || rs.Weight != 1 {
							t.Errorf("real server %d of %d: %v:%d weight %d", j, want.port, rs.Addr, rs.Port, rs.Weight)
						}
					}
				}
			})
		}
	}
	if fi, err := os.Stat(filepath.Join(notify, notifyScript)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("notify script: %v, %v", fi, err)
	}
	if _, err := newVRRPLab(VRRPOptions{Directors: 4}); err == nil {
		t.Error("4 directors accepted")
	}
}

// TestNotifyScript runs the notify script as keepalived would and reads
// its state with WaitState; it needs no root.
func TestNotifyScript(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteNotifyScript(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, st := range []string{"BACKUP", "MASTER"} {
		if out, err := run(ctx, p, "INSTANCE", VRRPInstanceVIP, st, "100"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if err := WaitState(ctx, dir, VRRPInstanceVIP, st); err != nil {
			t.Fatal(err)
		}
	}
	log, err := os.ReadFile(filepath.Join(dir, VRRPInstanceVIP+".log"))
	if err != nil || string(log) != "BACKUP\nMASTER\n" {
		t.Errorf("log %q (%v)", log, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := WaitState(short, dir, VRRPInstanceGW, "MASTER"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitState on no state: %v, want deadline exceeded", err)
	}
	if err := WaitState(short, t.TempDir(), VRRPInstanceGW, "MASTER"); err == nil || !strings.Contains(err.Error(), "no notify script") {
		t.Errorf("WaitState without a script: %v", err)
	}
}

// addrs is ns's `ip -o addr show` output.
func addrs(t *testing.T, ns *NS) string {
	t.Helper()
	out, err := ns.Run(context.Background(), "ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrivilegedVRRPTopology(t *testing.T) {
	start := time.Now()
	l := NewT(t)
	topo, err := VRRPTopology(l, VRRPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("topology built in %v", time.Since(start).Round(time.Millisecond))

	all := append([]*NS{topo.Client, topo.Switch}, topo.Directors...)
	all = append(all, topo.RS...)
	if got := withPrefix(netnsList(t), l.Prefix()); len(got) != len(all) || len(all) != 6 {
		t.Errorf("ip netns list shows %v, want %d namespaces", got, len(all))
	}
	if topo.Directors[1].Short() != "dirB" || topo.RS[1].Short() != "rs2" {
		t.Errorf("short names %q, %q", topo.Directors[1].Short(), topo.RS[1].Short())
	}
	wantIPs := []netip.Addr{topo.ClientIP, topo.VIP, topo.GatewayIP, topo.DirClientIPs[0], topo.DirClientIPs[1], topo.DirServerIPs[0], topo.DirServerIPs[1], topo.RSIPs[0], topo.RSIPs[1]}
	for k, s := range []string{"198.18.0.1", "198.18.0.100", "198.19.0.254", "198.18.0.2", "198.18.0.3", "198.19.0.2", "198.19.0.3", "198.19.0.11", "198.19.0.12"} {
		if wantIPs[k] != netip.MustParseAddr(s) {
			t.Errorf("address %d is %v, want %s", k, wantIPs[k], s)
		}
	}
	for _, ns := range all {
		for _, a := range []netip.Addr{topo.VIP, topo.GatewayIP} {
			if out := addrs(t, ns); strings.Contains(out, a.String()+"/") {
				t.Errorf("%v assigned in %s:\n%s", a, ns.Short(), out)
			}
		}
	}
	for _, d := range topo.Directors {
		for _, k := range []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.d0.rp_filter", "net.ipv4.conf.d1.rp_filter"} {
			out, err := d.Run(context.Background(), "sysctl", "-n", k)
			if err != nil || strings.TrimSpace(out) != "0" {
				t.Errorf("%s %s %q (%v), want 0", d.Short(), k, out, err)
			}
		}
	}
	out, err := topo.RS[0].Run(context.Background(), "ip", "route", "show", "default")
	if err != nil || !strings.Contains(out, "via 198.19.0.254 ") {
		t.Errorf("rs1 default route %q (%v), want via 198.19.0.254", out, err)
	}

	for i, d := range topo.Directors {
		ping(t, topo.Client, topo.DirClientIPs[i])
		ping(t, d, topo.DirClientIPs[1-i]) // the directors see each other on both sides
		ping(t, d, topo.DirServerIPs[1-i])
		for _, rs := range topo.RS {
			ping(t, rs, topo.DirServerIPs[i])
		}
	}
	// Nobody owns the VIP or the gateway yet.
	if err := pingOnce(topo.Client, topo.VIP); err == nil {
		t.Error("client reached the VIP with no VRRP running")
	}

	if err := topo.StartServers(l); err != nil {
		t.Fatal(err)
	}
	for k, rs := range topo.RS {
		want := fmt.Sprintf("rs%d\n", k+1)
		if out, err := curl(rs, "http://127.0.0.1/"); err != nil || out != want {
			t.Errorf("GET / inside rs%d: %q (%v), want %q", k+1, out, err, want)
		}
		if out, err := curl(topo.Directors[k%2], "http://"+topo.RSIPs[k].String()+"/"); err != nil || out != want {
			t.Errorf("GET / of rs%d from %s: %q (%v), want %q", k+1, topo.Directors[k%2].Short(), out, err, want)
		}
		got, err := topo.Directors[0].UDPAsk(netip.AddrPortFrom(topo.RSIPs[k], VRRPUDPPort), "hi")
		if want := fmt.Sprintf("rs%d:hi", k+1); err != nil || got != want {
			t.Errorf("UDP echo of rs%d: %q (%v), want %q", k+1, got, err, want)
		}
	}
	if len(topo.Nginx) != 2 || topo.Nginx[1].Name() != "rs2" {
		t.Errorf("Nginx %v", topo.Nginx)
	}

	if _, err := VRRPTopology(l, VRRPOptions{Directors: 4}); err == nil {
		t.Error("4 directors accepted")
	}
}

// TestPrivilegedVRRPThreeDirectors: dirC at .4, one real server.
func TestPrivilegedVRRPThreeDirectors(t *testing.T) {
	l := NewT(t)
	topo, err := VRRPTopology(l, VRRPOptions{Directors: 3, RealServers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Directors) != 3 || topo.Directors[2].Short() != "dirC" || topo.DirServerIPs[2] != netip.MustParseAddr("198.19.0.4") || len(topo.RS) != 1 {
		t.Fatalf("directors %v, RS %v", topo.DirServerIPs, topo.RSIPs)
	}
	ping(t, topo.Client, topo.DirClientIPs[2])
	ping(t, topo.RS[0], topo.DirServerIPs[2])
}

// TestPrivilegedVRRPKeepalived runs real keepalived on both directors:
// dirA (priority 150) becomes MASTER and dirB (100) BACKUP, the client
// reaches the VIP on dirA; dirA's keepalived dies, dirB takes over within
// the protocol's master-down interval and the client reaches the VIP on
// dirB.
func TestPrivilegedVRRPKeepalived(t *testing.T) {
	RequireRoot(t)
	for _, tc := range []struct {
		name     string
		o        VRRPConfOptions
		failover time.Duration // the deadline for dirB's MASTER after the kill
	}{
		// Master down: 3 × 0.1 s + skew (256-100)/256 × 0.1 s = 0.36 s.
		{"v3", VRRPConfOptions{Version: 3, AdvertInt: "0.1"}, time.Second},
		// 3 × 1 s + 0.61 s = 3.61 s.
		{"v2 PASS", VRRPConfOptions{Version: 2, AdvertInt: "1", AuthPass: "uvslab"}, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewT(t)
			topo, err := VRRPTopology(l, VRRPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var ks []*Keepalived
			var notify []string
			var opts []VRRPConfOptions
			for i, d := range topo.Directors {
				o := tc.o
				o.Priority = []int{150, 100}[i]
				o.NotifyDir = l.Dir(d.Short() + "-notify")
				notify = append(notify, o.NotifyDir)
				opts = append(opts, o)
				k, err := d.StartKeepalived(l.Dir(d.Short()+"-keepalived"), topo.KeepalivedConf(i, o))
				if err != nil {
					t.Fatal(err)
				}
				ks = append(ks, k)
			}
			logs := func() {
				for i, k := range ks {
					t.Logf("%s's keepalived:\n%s", topo.Directors[i].Short(), k.Proc().Output())
				}
			}
			macs := make([]string, len(topo.Directors))
			for i, d := range topo.Directors {
				mac, err := d.MAC(VRRPDirClientDev)
				if err != nil {
					t.Fatal(err)
				}
				macs[i] = mac.String()
			}
			// reachVIP waits until the client's ping of the VIP is
			// answered by director i.
			reachVIP := func(i int) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := Eventually(ctx, 10*time.Millisecond, func() error {
					if err := pingOnce(topo.Client, topo.VIP); err != nil {
						return err
					}
					mac, err := topo.Client.NeighMAC(topo.VIP)
					if err != nil {
						return err
					}
					if mac != macs[i] {
						return fmt.Errorf("VIP at %s, want %s's %s", mac, topo.Directors[i].Short(), macs[i])
					}
					return nil
				})
				if err != nil {
					logs()
					t.Fatal(err)
				}
			}

			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, w := range []struct {
				dir, name, state string
			}{
				{notify[0], VRRPInstanceVIP, "MASTER"}, {notify[0], VRRPInstanceGW, "MASTER"}, {notify[0], VRRPSyncGroup, "MASTER"},
				{notify[1], VRRPInstanceVIP, "BACKUP"}, {notify[1], VRRPInstanceGW, "BACKUP"}, {notify[1], VRRPSyncGroup, "BACKUP"},
			} {
				if err := WaitState(ctx, w.dir, w.name, w.state); err != nil {
					logs()
					t.Fatalf("%s: %v", w.dir, err)
				}
			}
			t.Logf("dirA MASTER, dirB BACKUP in %v", time.Since(t0).Round(time.Millisecond))
			reachVIP(0)
			if out := addrs(t, topo.Directors[0]); !strings.Contains(out, " "+topo.VIP.String()+"/24 ") || !strings.Contains(out, " "+topo.GatewayIP.String()+"/24 ") {
				t.Errorf("dirA lacks the VIP or the gateway:\n%s", out)
			}
			if out := addrs(t, topo.Directors[1]); strings.Contains(out, topo.VIP.String()+"/") {
				t.Errorf("dirB has the VIP:\n%s", out)
			}
			if err := pingOnce(topo.RS[0], topo.GatewayIP); err != nil {
				t.Error(err)
			}

			if err := ks[0].Kill(); err != nil {
				t.Fatal(err)
			}
			t0 = time.Now()
			fctx, fcancel := context.WithTimeout(context.Background(), tc.failover)
			defer fcancel()
			if err := WaitState(fctx, notify[1], VRRPInstanceVIP, "MASTER"); err != nil {
				logs()
				t.Fatalf("after dirA's death: %v", err)
			}
			t.Logf("dirB MASTER %v after dirA's keepalived was killed", time.Since(t0).Round(time.Millisecond))
			if err := WaitState(ctx, notify[1], VRRPInstanceGW, "MASTER"); err != nil {
				t.Fatal(err)
			}
			// A dead node's addresses die with it; the killed keepalived
			// left them on dirA.
			for _, a := range []struct {
				ip  netip.Addr
				dev string
			}{{topo.VIP, VRRPDirClientDev}, {topo.GatewayIP, VRRPDirServerDev}} {
				if err := ipCmd("-n", topo.Directors[0].Name(), "addr", "del", a.ip.String()+"/24", "dev", a.dev); err != nil {
					t.Error(err)
				}
			}
			reachVIP(1)
			if err := pingOnce(topo.RS[0], topo.GatewayIP); err != nil {
				t.Error(err)
			}

			// dirA comes back and preempts; its state files still hold
			// what it had before its death, dirB's tell.
			k, err := topo.Directors[0].StartKeepalived(ks[0].Dir(), topo.KeepalivedConf(0, opts[0]))
			if err != nil {
				t.Fatal(err)
			}
			ks[0] = k
			rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer rcancel()
			for _, name := range []string{VRRPInstanceVIP, VRRPInstanceGW} {
				if err := WaitState(rctx, notify[1], name, "BACKUP"); err != nil {
					logs()
					t.Fatalf("after dirA's return: %v", err)
				}
			}
			reachVIP(0)
			// A graceful stop: dirA's priority-0 advert hands over at
			// once, and dirA removes its addresses itself.
			t0 = time.Now()
			stopped := make(chan error, 1)
			go func() { stopped <- ks[0].Stop() }()
			gctx, gcancel := context.WithTimeout(context.Background(), tc.failover)
			defer gcancel()
			if err := WaitState(gctx, notify[1], VRRPInstanceVIP, "MASTER"); err != nil {
				<-stopped
				logs()
				t.Fatalf("after dirA's stop: %v", err)
			}
			t.Logf("dirB MASTER %v after dirA's keepalived was told to stop", time.Since(t0).Round(time.Millisecond))
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			t.Logf("dirA's keepalived stopped in %v", time.Since(t0).Round(time.Millisecond))
			if out := addrs(t, topo.Directors[0]); strings.Contains(out, topo.VIP.String()+"/") || strings.Contains(out, topo.GatewayIP.String()+"/") {
				t.Errorf("dirA kept an address after a graceful stop:\n%s", out)
			}
			reachVIP(1)
			if t.Failed() {
				logs()
			}
		})
	}
}
