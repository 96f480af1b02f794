package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedNATFloatingGateway: the real servers' gateway is an
// address uvsd owns (the floating gateway of the two-armed keepalived
// setup), not the director kernel's.
func TestPrivilegedNATFloatingGateway(t *testing.T) {
	gw := netip.MustParseAddr("198.19.0.254")
	n := newNATLab(t, lab.NATOptions{Gateway: gw})
	vrrp := fmt.Sprintf(`vrrp_instance VI_GW {
    state MASTER
    interface d1
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        %s/24
    }
}`, gw)
	startUVSD(t, n.l, n.topo.Director, n.conf(vrrp), "--workers", "1", "--metrics", "127.0.0.1:9180")
	// The gateway is a VRRP address: uvsd owns it once VI_GW is MASTER,
	// after Master_Down_Interval (3 × advert_int 1 s + skew), as
	// keepalived would.
	waitMetric(t, n.topo.Director, `uvs_vrrp_state{instance="VI_GW"}`, 10*time.Second, "2 (MASTER)", func(v uint64) bool { return v == 2 })
	got := map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%v/", n.topo.VIP), 20) {
		got[w]++
	}
	if got["rs1"] != 10 || got["rs2"] != 10 {
		t.Fatalf("split %v, want 10/10", got)
	}
	// The real servers learnt the gateway's MAC from uvsd: the director's.
	gwMAC, err := n.topo.RS[0].NeighMAC(gw)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := n.topo.Director.MAC("d1")
	if err != nil {
		t.Fatal(err)
	}
	if gwMAC != mac.String() {
		t.Fatalf("rs1's neighbour entry for %v: %q, want the director's %v", gw, gwMAC, mac)
	}
}

// TestPrivilegedNATICMPError: a real server answers a UDP datagram with
// port unreachable; uvsd translates the error so the client's connected
// socket sees ECONNREFUSED from the VIP.
func TestPrivilegedNATICMPError(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	extra := fmt.Sprintf(`virtual_server %[1]s 54 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server %[2]s 5454 {
        weight 1
    }
}`, n.topo.VIP, n.topo.RSIPs[0])
	startUVSD(t, n.l, n.topo.Director, n.conf(extra), "--workers", "1", "--metrics", "127.0.0.1:9180")
	if reply, err := n.topo.Client.UDPAsk(netip.AddrPortFrom(n.topo.VIP, 54), "anyone?"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("reply %q, error %v; want ECONNREFUSED (the translated port unreachable)", reply, err)
	}
	if v := metric(t, n.topo.Director, "uvs_dataplane_icmp_errors_total"); v < 1 {
		t.Fatalf("icmp_errors_total %d, want >= 1", v)
	}
}

// metricsText is uvsd's /metrics page (--metrics 127.0.0.1:9180) in ns.
func metricsText(t *testing.T, ns *lab.NS) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "curl", "-sS", "http://127.0.0.1:9180/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// metric reads one metric, named with its labels as /metrics writes them
// (`uvs_vrrp_state{instance="VI_GW"}`), from uvsd's /metrics in ns.
func metric(t *testing.T, ns *lab.NS, name string) uint64 {
	t.Helper()
	out := metricsText(t, ns)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in:\n%s", name, out)
	return 0
}

// waitMetric polls metric name in ns every 20 ms until ok accepts its
// value, and fails t, with the whole /metrics page, if that takes longer
// than within. want says what ok accepts, for the message.
func waitMetric(t *testing.T, ns *lab.NS, name string, within time.Duration, want string, ok func(uint64) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		if v := metric(t, ns, name); !ok(v) {
			return fmt.Errorf("%s is %d, want %s", name, v, want)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, metricsText(t, ns))
	}
}

// TestPrivilegedMultiWorkerSteering: with two workers, the fanout program
// brings both legs of every connection to the worker that owns it.
func TestPrivilegedMultiWorkerSteering(t *testing.T) {
	// One queue per veth: worker 0 transmits by AF_XDP, worker 1 by
	// sendmmsg. Two, as on a multi-queue NIC: each worker by its own
	// queue's AF_XDP socket.
	for _, queues := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d queues", queues), func(t *testing.T) {
			n := newNATLab(t, lab.NATOptions{Queues: queues})
			startUVSD(t, n.l, n.topo.Director, n.conf(""), "--workers", "2", "--metrics", "127.0.0.1:9180")
			got := map[string]int{}
			for _, w := range curlClose(t, n.topo.Client, n.vipURL(), 400) {
				got[w]++
			}
			// rr is shared by the workers: IPVS's exact alternation,
			// whichever worker each connection landed on.
			if got["rs1"] != 200 || got["rs2"] != 200 {
				t.Fatalf("answers %v, want 200/200", got)
			}
			if v := metric(t, n.topo.Director, "uvs_dataplane_misdirected_total"); v != 0 {
				t.Fatalf("%d packets reached a worker that does not own their connection", v)
			}
			if v := metric(t, n.topo.Director, "uvs_dataplane_ring_overruns_total"); v != 0 {
				t.Errorf("%d frames lost to full rings at 400 connections", v)
			}
			// metric fails if a worker has no line: a check that sees
			// no line checks nothing.
			for _, w := range []string{"0", "1"} {
				if v := metric(t, n.topo.Director, `uvs_dataplane_worker_rx_frames_total{worker="`+w+`"}`); v < 100 {
					t.Errorf("worker %s received %d frames: steering does not spread 400 connections", w, v)
				}
				tx := metric(t, n.topo.Director, `uvs_xsk_worker_tx_frames_total{worker="`+w+`"}`)
				switch hasQueue := w == "0" || queues > 1; {
				case hasQueue && tx < 100:
					t.Errorf("worker %s sent %d frames by AF_XDP with %d queues, want at least 100", w, tx, queues)
				case !hasQueue && tx != 0:
					t.Errorf("worker %s sent %d frames by AF_XDP with %d queues and none for it", w, tx, queues)
				}
			}
		})
	}
}

// TestPrivilegedUvsadmLive: a service added with uvsadm serves at once.
func TestPrivilegedUvsadmLive(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	d := startUVSD(t, n.l, n.topo.Director, n.conf(""), "--workers", "1")
	vip := n.topo.VIP.String()
	d.mustAdm("-A", "-t", vip+":8080", "-s", "wrr")
	d.mustAdm("-a", "-t", vip+":8080", "-r", n.topo.RSIPs[0].String()+":80", "-m", "-w", "3")
	d.mustAdm("-a", "-t", vip+":8080", "-r", n.topo.RSIPs[1].String()+":80", "-m", "-w", "1")
	got := map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%s:8080/", vip), 400) {
		got[w]++
	}
	if got["rs1"] != 300 || got["rs2"] != 100 {
		t.Fatalf("wrr 3:1 split %v, want rs1:300 rs2:100", got)
	}
	d.mustAdm("-D", "-t", vip+":8080")
	if out, err := d.adm("-L", "-n", "-t", vip+":8080"); err == nil {
		t.Fatalf("service still listed after -D:\n%s", out)
	}
}

// TestConfigErrors: uvsd refuses a broken keepalived.conf with file:line
// and starts nothing; --check says the same without root.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		conf, want string
	}{
		{"virtual_server 198.18.0.100 80 {\n  lb_algo rr\n  real_server 198.19.0.300 80 {\n  }\n}\n", `keepalived.conf:3: real_server: bad address "198.19.0.300"`},
		{"virtual_server 198.18.0.100 80 {\n  lb_algo nosuch\n}\n", `keepalived.conf:2: lb_algo: unknown scheduler "nosuch"`},
		{"virtual_server 198.18.0.100 80 {\n  lb_algo rr\n", "keepalived.conf:1: virtual_server: '{' is never closed"},
		{"virtual_server 198.18.0.100 80 {\n  lb_kind DR\n  real_server 198.19.0.1 8080 {\n  }\n}\n", "keepalived.conf:3: real_server 198.19.0.1:8080: port mapping is impossible in DR"},
	} {
		cfg := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(cfg, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(bin, "uvsd"), "--check", "-f", cfg).CombinedOutput()
		if err == nil {
			t.Fatalf("uvsd --check accepted:\n%s", tc.conf)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("uvsd --check said %q, want %q", out, tc.want)
		}
	}
}

// TestPrivilegedEmptyStart: uvsd started with no service (the ipvsadm way:
// start empty, then load the rules) takes every interface and serves what
// `uvsadm -R` restores.
func TestPrivilegedEmptyStart(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	d := startUVSD(t, n.l, n.topo.Director, "! no services yet\n", "--workers", "2")
	vip := n.topo.VIP.String()
	rules := fmt.Sprintf("-A -t %[1]s:80 -s rr\n-a -t %[1]s:80 -r %[2]s:80 -m -w 1\n-a -t %[1]s:80 -r %[3]s:80 -m -w 1\n", vip, n.topo.RSIPs[0], n.topo.RSIPs[1])
	d.restore(rules)
	got := map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, "http://"+vip+"/", 20) {
		got[w]++
	}
	if got["rs1"]+got["rs2"] != 20 || got["rs1"] == 0 || got["rs2"] == 0 {
		t.Fatalf("split %v after -R into an empty uvsd", got)
	}
}

// TestPrivilegedLogJSON: --log-json makes every log line a JSON object
// with slog's keys.
func TestPrivilegedLogJSON(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	d := startUVSD(t, n.l, n.topo.Director, n.conf(""), "--workers", "1", "--log-json")
	out := ""
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		if out = d.proc.Output(); !strings.Contains(out, "uvsd started") {
			return errors.New("no start line yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if _, ok := rec["msg"]; !ok || rec["level"] == nil || rec["time"] == nil {
			t.Fatalf("JSON line without slog's time/level/msg: %q", line)
		}
	}
}
