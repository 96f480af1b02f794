package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// tcpCheckedService is virtual_server vip:80, rr NAT over rss:80, each
// real server with a TCP_CHECK (connect_timeout 0.5, one retry) every
// delayLoop seconds, the retry delayBeforeRetry seconds after a failure.
func tcpCheckedService(vip netip.Addr, delayLoop, delayBeforeRetry string, rss ...netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server %v 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", vip)
	for _, rs := range rss {
		fmt.Fprintf(&b, `    real_server %v 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 0.5
            delay_loop %s
            retry 1
            delay_before_retry %s
        }
    }
`, rs, delayLoop, delayBeforeRetry)
	}
	return b.String() + "}\n"
}

// httpGetConf is the :81 service of TestPrivilegedHealthChecks: an
// HTTP_GET of /health with inhibit_on_failure on rs1 (%[2]s), rs2 (%[3]s)
// unchecked.
const httpGetConf = `virtual_server %[1]s 81 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %[2]s 80 {
        weight 1
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 0.5
            delay_loop 0.2
            retry 1
            delay_before_retry 0.1
        }
    }
    real_server %[3]s 80 {
        weight 1
    }
}
`

// TestPrivilegedHealthChecks: keepalived's checkers drive the pool. A
// stopped nginx leaves within delay_loop*(retry+1)+delay_before_retry
// plus a second, no request fails after that, and it returns when it is
// back; an HTTP_GET answering 500 gets weight 0 with inhibit_on_failure.
func TestPrivilegedHealthChecks(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	conf := tcpCheckedService(n.topo.VIP, "0.2", "0.1", n.topo.RSIPs...) + fmt.Sprintf(httpGetConf, n.topo.VIP, n.topo.RSIPs[0], n.topo.RSIPs[1])
	d := startUVSD(t, n.l, n.topo.Director, conf, "--workers", "1")
	rs2 := fmt.Sprintf("  -> %v:80", n.topo.RSIPs[1])
	// rs2's line under the :80 service.
	listed := func() bool {
		out := d.mustAdm("-L", "-n", "-t", n.topo.VIP.String()+":80")
		return strings.Contains(out, rs2)
	}
	if !listed() {
		t.Fatal("rs2 not in the pool at start")
	}
	if err := n.nginx[1].Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := 200*time.Millisecond*2 + 100*time.Millisecond + time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		if listed() {
			return fmt.Errorf("rs2 still listed")
		}
		return nil
	}); err != nil {
		t.Fatalf("stopped server not removed within %v: %v", deadline, err)
	}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%v/", n.topo.VIP), 50) {
		if w != "rs1" {
			t.Fatalf("answer from %q after rs2 left", w)
		}
	}
	if err := n.nginx[1].Start(); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := lab.Eventually(ctx2, 20*time.Millisecond, func() error {
		if !listed() {
			return fmt.Errorf("rs2 not back")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// HTTP_GET with inhibit_on_failure: weight 0, still listed.
	if err := n.nginx[0].SetHealthy(false); err != nil {
		t.Fatal(err)
	}
	rs1w0 := fmt.Sprintf("  -> %v:80               Masq    0", n.topo.RSIPs[0])
	ctx3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	if err := lab.Eventually(ctx3, 20*time.Millisecond, func() error {
		out := d.mustAdm("-L", "-n", "-t", n.topo.VIP.String()+":81")
		if !strings.Contains(out, rs1w0) {
			return fmt.Errorf("rs1 not at weight 0:\n%s", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%v:81/", n.topo.VIP), 20) {
		if w != "rs2" {
			t.Fatalf("quiescent rs1 got a new connection (%q)", w)
		}
	}
}

// TestPrivilegedSorryServer: when the only real server fails, the quorum
// is lost and the sorry server takes the service; notify_down runs; when
// the server is back, it returns and the sorry server leaves.
func TestPrivilegedSorryServer(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	flag := t.TempDir() + "/down"
	conf := fmt.Sprintf(`virtual_server %[1]s 82 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    sorry_server %[2]s 80
    real_server %[3]s 80 {
        weight 1
        notify_down "touch %[4]s"
        TCP_CHECK {
            connect_timeout 0.5
            delay_loop 0.2
            retry 0
        }
    }
}
`, n.topo.VIP, n.topo.RSIPs[0], n.topo.RSIPs[1], flag)
	d := startUVSD(t, n.l, n.topo.Director, conf, "--workers", "1")
	url := fmt.Sprintf("http://%v:82/", n.topo.VIP)
	if got := curlClose(t, n.topo.Client, url, 4); strings.Join(got, ",") != "rs2,rs2,rs2,rs2" {
		t.Fatalf("before: %v, want rs2 only", got)
	}
	if err := n.nginx[1].Stop(); err != nil {
		t.Fatal(err)
	}
	listing := func() string { return d.mustAdm("-L", "-n", "-t", n.topo.VIP.String()+":82") }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		out := listing()
		if strings.Contains(out, n.topo.RSIPs[1].String()+":80") || !strings.Contains(out, n.topo.RSIPs[0].String()+":80") {
			return fmt.Errorf("not on the sorry server yet:\n%s", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := curlClose(t, n.topo.Client, url, 4); strings.Join(got, ",") != "rs1,rs1,rs1,rs1" {
		t.Fatalf("while down: %v, want the sorry server rs1", got)
	}
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		_, err := os.Stat(flag)
		return err
	}); err != nil {
		t.Fatalf("notify_down did not run: %v", err)
	}
	if err := n.nginx[1].Start(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		out := listing()
		if !strings.Contains(out, n.topo.RSIPs[1].String()+":80") || strings.Contains(out, n.topo.RSIPs[0].String()+":80") {
			return fmt.Errorf("sorry server still in place:\n%s", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPrivilegedAlphaAndMetrics: an alpha server starts out of the pool
// and joins after its first good check; /metrics carries node_exporter's
// ipvs names with the traffic.
func TestPrivilegedAlphaAndMetrics(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	conf := fmt.Sprintf(`virtual_server %[1]s 83 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %[2]s 80 {
        weight 1
        alpha
        TCP_CHECK {
            connect_timeout 0.5
            delay_loop 0.3
        }
    }
}
`, n.topo.VIP, n.topo.RSIPs[0])
	// Down at start: with alpha it must not be in the pool until a check
	// succeeds (without alpha it would be, until checks failed).
	if err := n.nginx[0].Stop(); err != nil {
		t.Fatal(err)
	}
	d := startUVSD(t, n.l, n.topo.Director, conf, "--workers", "1", "--metrics", "127.0.0.1:9180")
	if out := d.mustAdm("-L", "-n"); strings.Contains(out, n.topo.RSIPs[0].String()+":80") {
		t.Fatalf("alpha server in the pool before any check:\n%s", out)
	}
	if err := n.nginx[0].Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		if !strings.Contains(d.mustAdm("-L", "-n"), n.topo.RSIPs[0].String()+":80") {
			return fmt.Errorf("alpha server not added yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	curlClose(t, n.topo.Client, fmt.Sprintf("http://%v:83/", n.topo.VIP), 10)
	if v := metric(t, n.topo.Director, "node_ipvs_connections_total"); v != 10 {
		t.Errorf("node_ipvs_connections_total %d, want 10", v)
	}
	if v := metric(t, n.topo.Director, "node_ipvs_incoming_packets_total"); v < 30 {
		t.Errorf("node_ipvs_incoming_packets_total %d, want >= 30", v)
	}
	out := metricsText(t, n.topo.Director)
	want := fmt.Sprintf(`node_ipvs_backend_weight{local_address="%v",local_mark="",local_port="83",proto="TCP",remote_address="%v",remote_port="80"} 1`, n.topo.VIP, n.topo.RSIPs[0])
	if !strings.Contains(out, want) {
		t.Errorf("metrics lack %s", want)
	}
}
