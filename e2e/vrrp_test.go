package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// The VRRP tests run two directors over the two-armed NAT lab of the LVS
// docs (lab.VRRPTopology): VI_VIP holds the VIP on the client side, VI_GW
// the real servers' gateway, both in one sync group, and the connection
// sync daemon follows VI_GW.

type vrrpLab struct {
	l    *lab.Lab
	topo *lab.VRRPLab
	// notify[i] is director i's notify folder (lab.WaitState).
	notify []string
}

func newVRRPLab(t *testing.T) *vrrpLab {
	t.Helper()
	l := lab.NewT(t)
	topo, err := lab.VRRPTopology(l, lab.VRRPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.StartServers(l); err != nil {
		t.Fatal(err)
	}
	v := &vrrpLab{l: l, topo: topo}
	for i := range topo.Directors {
		v.notify = append(v.notify, filepath.Join(t.TempDir(), fmt.Sprintf("notify%d", i)))
	}
	return v
}

// conf is director i's keepalived.conf with the lab's services, notify
// scripts and connection sync.
func (v *vrrpLab) conf(i int, o lab.VRRPConfOptions) string {
	o.NotifyDir = v.notify[i]
	o.VirtualServers = true
	o.Sync = true
	return v.topo.KeepalivedConf(i, o)
}

// startDirector starts uvsd on director i.
func (v *vrrpLab) startDirector(t *testing.T, i int, o lab.VRRPConfOptions) *director {
	t.Helper()
	return v.startConf(t, i, v.conf(i, o))
}

// startConf starts uvsd on director i with conf.
func (v *vrrpLab) startConf(t *testing.T, i int, conf string) *director {
	t.Helper()
	return startUVSD(t, v.l, v.topo.Directors[i], conf, "--metrics", "127.0.0.1:9180")
}

// startPair starts dirA and waits until it is MASTER, then dirB and waits
// until it is BACKUP, each with its conf(i, o) changed by edit (if not
// nil); it returns dirA's uvsd.
func (v *vrrpLab) startPair(t *testing.T, o lab.VRRPConfOptions, edit func(i int, conf string) string) *director {
	t.Helper()
	conf := func(i int) string {
		if edit == nil {
			return v.conf(i, o)
		}
		return edit(i, v.conf(i, o))
	}
	a := v.startConf(t, 0, conf(0))
	v.waitState(t, 0, "MASTER", 5*time.Second)
	v.startConf(t, 1, conf(1))
	v.waitState(t, 1, "BACKUP", 5*time.Second)
	return a
}

func (v *vrrpLab) waitState(t *testing.T, i int, want string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for _, inst := range []string{lab.VRRPInstanceVIP, lab.VRRPInstanceGW} {
		if err := lab.WaitState(ctx, v.notify[i], inst, want); err != nil {
			t.Fatalf("director %d, %s: %v", i, inst, err)
		}
	}
}

// state is what director i's notify script last recorded for its VIP
// instance, "" if nothing yet.
func (v *vrrpLab) state(t *testing.T, i int) string {
	t.Helper()
	s, err := lab.State(v.notify[i], lab.VRRPInstanceVIP)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vipMAC is the MAC the client's neighbour table holds for the VIP.
func (v *vrrpLab) vipMAC(t *testing.T) string {
	t.Helper()
	mac, err := v.topo.Client.NeighMAC(v.topo.VIP)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

func (v *vrrpLab) dirMAC(t *testing.T, i int) string {
	t.Helper()
	m, err := v.topo.Directors[i].MAC(lab.VRRPDirClientDev)
	if err != nil {
		t.Fatal(err)
	}
	return m.String()
}

// prober sends a UDP datagram to the VIP's echo service every interval
// from the client and records when answers come back, to measure the
// longest outage.
type prober struct {
	mu      sync.Mutex
	replies []time.Time
	sent    int
	stop    chan struct{}
	done    chan struct{}
}

func startProber(t *testing.T, ns *lab.NS, dst string, every time.Duration) *prober {
	t.Helper()
	var conn *net.UDPConn
	if err := ns.Do(func() error {
		raddr, err := net.ResolveUDPAddr("udp4", dst)
		if err != nil {
			return err
		}
		conn, err = net.DialUDP("udp4", nil, raddr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if n > 0 {
				p.mu.Lock()
				p.replies = append(p.replies, time.Now())
				p.mu.Unlock()
			}
		}
	}()
	go func() {
		defer close(p.done)
		defer conn.Close()
		tk := time.NewTicker(every)
		defer tk.Stop()
		// Bounded: at most two minutes of probes.
		for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); {
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			if _, err := conn.Write([]byte("probe")); err == nil {
				p.mu.Lock()
				p.sent++
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

func (p *prober) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// waitReplies waits until n more replies than now have arrived.
func (p *prober) waitReplies(t *testing.T, n int, within time.Duration) {
	t.Helper()
	p.mu.Lock()
	base := len(p.replies)
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := lab.Eventually(ctx, 5*time.Millisecond, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.replies) < base+n {
			return fmt.Errorf("%d replies of %d sent", len(p.replies), p.sent)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// maxGap is the longest time without a reply, between since and the
// last reply.
func (p *prober) maxGap(since time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	prev := time.Time{}
	for _, r := range p.replies {
		if r.Before(since) {
			prev = r
			continue
		}
		if !prev.IsZero() && r.Sub(prev) > gap {
			gap = r.Sub(prev)
		}
		prev = r
	}
	return gap
}

// download is a rate-limited fetch of /big through the VIP, so that it
// spans failovers.
type download struct {
	cmd  *exec.Cmd
	out  strings.Builder
	errc chan error
}

func startDownload(t *testing.T, ns *lab.NS, url string, rate string) *download {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	d := &download{errc: make(chan error, 1)}
	d.cmd = ns.Exec(ctx, "sh", "-c", "curl -sS --fail --max-time 80 --limit-rate "+rate+" "+url+" | sha256sum")
	d.cmd.Stdout = &d.out
	d.cmd.Stderr = &d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.errc <- d.cmd.Wait() }()
	return d
}

func (d *download) check(t *testing.T) {
	t.Helper()
	if err := <-d.errc; err != nil {
		t.Fatalf("download: %v: %s", err, d.out.String())
	}
	got := strings.Fields(d.out.String())
	if len(got) == 0 || got[0] != lab.BigSHA256() {
		t.Fatalf("download: sha256 %q, want %s", d.out.String(), lab.BigSHA256())
	}
}

// TestPrivilegedVRRPFailover: two uvsd directors, VRRPv3 advert_int 0.1.
// The MASTER is killed under continuous UDP probes and during a long
// download: the outage stays within Master_Down_Interval + 100 ms, the
// client's ARP entry moves to the new MASTER, and the download (synced
// to the BACKUP) completes with the right bytes. The old MASTER comes
// back, receives the table, preempts, and the download still completes.
func TestPrivilegedVRRPFailover(t *testing.T) {
	v := newVRRPLab(t)
	o := lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1"}
	a := v.startPair(t, o, nil)

	// The BACKUP answers nothing and forwards nothing.
	vip := v.topo.VIP.String()
	words := curlClose(t, v.topo.Client, "http://"+vip+"/", 20)
	if len(words) != 20 {
		t.Fatalf("%d answers, want 20", len(words))
	}
	if got, want := v.vipMAC(t), v.dirMAC(t, 0); got != want {
		t.Fatalf("client's ARP entry for the VIP: %s, want the MASTER's %s", got, want)
	}
	if n := metric(t, v.topo.Directors[1], "uvs_dataplane_arp_replies_total"); n != 0 {
		t.Fatalf("the BACKUP sent %d ARP replies", n)
	}

	p := startProber(t, v.topo.Client, fmt.Sprintf("%s:%d", vip, lab.VRRPUDPPort), 5*time.Millisecond)
	p.waitReplies(t, 20, 5*time.Second)
	// 10 MB at 1 MB/s: about ten seconds, across both failovers. The
	// MASTER dies once the BACKUP has the download's connection (the one
	// record imported after it started).
	before := metric(t, v.topo.Directors[1], "uvs_sync_records_imported_total")
	dl := startDownload(t, v.topo.Client, "http://"+vip+"/big", "1M")
	waitMetric(t, v.topo.Directors[1], "uvs_sync_records_imported_total", 10*time.Second,
		fmt.Sprintf("more than the %d before the download", before), func(n uint64) bool { return n > before })

	killed := time.Now()
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 1, "MASTER", 3*time.Second)
	p.waitReplies(t, 20, 5*time.Second)
	// Master_Down_Interval for priority 100 at 0.1 s: 3 × 0.1 + 156/256 × 0.1.
	mdi := 300*time.Millisecond + 156*100*time.Millisecond/256
	gap := p.maxGap(killed.Add(-50 * time.Millisecond))
	t.Logf("failover outage %v (Master_Down_Interval %v)", gap, mdi)
	if gap > mdi+100*time.Millisecond {
		t.Errorf("outage %v, want at most %v", gap, mdi+100*time.Millisecond)
	}
	if got, want := v.vipMAC(t), v.dirMAC(t, 1); got != want {
		t.Errorf("client's ARP entry for the VIP: %s, want the new MASTER's %s", got, want)
	}

	// The old MASTER returns: it gets the table from dirB, then preempts.
	<-a.proc.Done()
	v.startDirector(t, 0, o)
	v.waitState(t, 0, "MASTER", 10*time.Second)
	v.waitState(t, 1, "BACKUP", 5*time.Second)
	if n := metric(t, v.topo.Directors[0], "uvs_sync_records_imported_total"); n < 1 {
		t.Errorf("the returning MASTER imported %d records", n)
	}
	p.waitReplies(t, 20, 5*time.Second)
	dl.check(t)
}

// TestPrivilegedVRRPNoPreempt: with nopreempt the returning
// higher-priority director stays BACKUP.
func TestPrivilegedVRRPNoPreempt(t *testing.T) {
	v := newVRRPLab(t)
	o := lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1", NoPreempt: true}
	a := v.startPair(t, o, nil)
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 1, "MASTER", 3*time.Second)
	<-a.proc.Done()
	v.startDirector(t, 0, o)
	v.waitState(t, 0, "BACKUP", 5*time.Second)
	// Ten Master_Down_Intervals later it is still BACKUP: a state that
	// must not change, sampled every 200 ms for 4 s.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); <-tick.C {
		if s := v.state(t, 0); s == "MASTER" {
			t.Fatal("the nopreempt director took over")
		}
		if n := metric(t, v.topo.Directors[0], `uvs_vrrp_state{instance="VI_VIP"}`); n != 1 {
			t.Fatalf("uvs_vrrp_state %d, want 1 (BACKUP)", n)
		}
	}
	words := curlClose(t, v.topo.Client, "http://"+v.topo.VIP.String()+"/", 10)
	if len(words) != 10 {
		t.Fatalf("%d answers", len(words))
	}
}

// TestPrivilegedVRRPKeepalivedInterop: uvsd and Debian's keepalived as
// the two routers of the same instances, both ways, v3 and v2 with PASS
// authentication.
func TestPrivilegedVRRPKeepalivedInterop(t *testing.T) {
	for _, tc := range []struct {
		name     string
		o        lab.VRRPConfOptions
		failover time.Duration
	}{
		{"v3", lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1"}, 2 * time.Second},
		{"v2-pass", lab.VRRPConfOptions{Version: 2, AdvertInt: "1", AuthPass: "uvs-lab"}, 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("keepalived-master", func(t *testing.T) {
				v := newVRRPLab(t)
				ko := tc.o
				ko.NotifyDir = v.notify[0]
				ka, err := v.topo.Directors[0].StartKeepalived(v.l.Dir("keepalived"), v.topo.KeepalivedConf(0, ko))
				if err != nil {
					t.Fatal(err)
				}
				v.waitState(t, 0, "MASTER", tc.failover+2*time.Second)
				v.startDirector(t, 1, tc.o)
				v.waitState(t, 1, "BACKUP", 5*time.Second)
				// keepalived's adverts keep uvsd BACKUP.
				waitMetric(t, v.topo.Directors[1], `uvs_vrrp_adverts_received_total{instance="VI_VIP"}`, tc.failover,
					"adverts from keepalived", func(n uint64) bool { return n > 0 })
				if err := ka.Stop(); err != nil {
					t.Log(err)
				}
				v.waitState(t, 1, "MASTER", tc.failover)
				words := curlClose(t, v.topo.Client, "http://"+v.topo.VIP.String()+"/", 10)
				if len(words) != 10 {
					t.Fatalf("%d answers through uvsd", len(words))
				}
			})
			t.Run("uvsd-master", func(t *testing.T) {
				v := newVRRPLab(t)
				a := v.startDirector(t, 0, tc.o)
				v.waitState(t, 0, "MASTER", tc.failover+2*time.Second)
				ko := tc.o
				ko.NotifyDir = v.notify[1]
				if _, err := v.topo.Directors[1].StartKeepalived(v.l.Dir("keepalived"), v.topo.KeepalivedConf(1, ko)); err != nil {
					t.Fatal(err)
				}
				v.waitState(t, 1, "BACKUP", 5*time.Second)
				words := curlClose(t, v.topo.Client, "http://"+v.topo.VIP.String()+"/", 10)
				if len(words) != 10 {
					t.Fatalf("%d answers through uvsd", len(words))
				}
				if err := a.proc.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				v.waitState(t, 1, "MASTER", tc.failover)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := lab.Eventually(ctx, 50*time.Millisecond, func() error {
					_, err := v.topo.Client.Run(ctx, "ping", "-c", "1", "-W", "1", v.topo.VIP.String())
					return err
				}); err != nil {
					t.Fatalf("the VIP does not answer on keepalived: %v", err)
				}
			})
		})
	}
}

// TestPrivilegedVRRPBadAdverts: adverts with the wrong TTL, password,
// VRID or checksum are counted by reason and change nothing.
func TestPrivilegedVRRPBadAdverts(t *testing.T) {
	v := newVRRPLab(t)
	o := lab.VRRPConfOptions{Version: 2, AdvertInt: "1", AuthPass: "secret"}
	v.startDirector(t, 0, o)
	v.waitState(t, 0, "MASTER", 6*time.Second)
	frames := badAdverts(t, v)
	if err := v.topo.Client.Do(func() error { return sendFrames(lab.VRRPClientDev, frames) }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, want := range []string{
		`uvs_vrrp_adverts_dropped_total{instance="",reason="ttl"}`,
		`uvs_vrrp_adverts_dropped_total{instance="",reason="checksum"}`,
		`uvs_vrrp_adverts_dropped_total{instance="",reason="vrid"}`,
		`uvs_vrrp_adverts_dropped_total{instance="VI_VIP",reason="auth"}`,
	} {
		if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
			out := metricsText(t, v.topo.Directors[0])
			if !strings.Contains(out, want+" 1") {
				return fmt.Errorf("no %s 1", want)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	if s := v.state(t, 0); s != "MASTER" {
		t.Fatalf("state %s after bad adverts", s)
	}
}
