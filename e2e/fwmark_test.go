package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// fwmarkConf is a director with no address service for fwVIP: a VRRP
// instance owns the address and two fwmark services carry its traffic,
// as in keepalived's "DR with fwmark" setups (NAT here). The real
// servers have no port: each connection keeps the port it came to.
const fwmarkConf = `vrrp_instance VI_FW {
    state MASTER
    interface d0
    virtual_router_id 61
    priority 100
    virtual_ipaddress {
        %[1]s/24
    }
}
virtual_server fwmark 1 {
    lb_algo rr
    lb_kind NAT
%[2]s}
virtual_server fwmark 2 {
    lb_algo rr
    lb_kind NAT
%[2]s}
`

// TestPrivilegedFWMark: the operator's mangle rules mark HTTP and UDP
// traffic to an address, as for IPVS; uvsd serves the marks' services
// with two workers, and without the marks the address serves nothing.
func TestPrivilegedFWMark(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	fwVIP := netip.MustParseAddr("198.18.0.150")
	var rss string
	for _, ip := range n.topo.RSIPs {
		rss += fmt.Sprintf("    real_server %v {\n        weight 1\n    }\n", ip)
	}
	dir := n.topo.Director
	d := startUVSD(t, n.l, dir, fmt.Sprintf(fwmarkConf, fwVIP, rss), "--workers", "2", "--metrics", "127.0.0.1:9180")
	waitMetric(t, dir, `uvs_vrrp_state{instance="VI_FW"}`, 10*time.Second, "2 (MASTER)", func(v uint64) bool { return v == 2 })

	nft := func(cmd string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := dir.Run(ctx, "nft", cmd); err != nil {
			t.Fatalf("nft %s: %v\n%s", cmd, err, out)
		}
	}
	nft(fmt.Sprintf(`add table ip mangle_fw { chain pre { type filter hook prerouting priority mangle; ip daddr %[1]s tcp dport 80 meta mark set 1; ip daddr %[1]s udp dport 5353 meta mark set 2; }; }`, fwVIP))

	got := map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%v/", fwVIP), 20) {
		got[w]++
	}
	// rr is shared by the workers: an exact alternation.
	if got["rs1"] != 10 || got["rs2"] != 10 {
		t.Fatalf("HTTP answers %v, want 10/10", got)
	}
	udp := map[string]int{}
	for range 10 {
		name, err := udpAsk(n.topo.Client, netip.AddrPortFrom(fwVIP, 5353))
		if err != nil {
			t.Fatalf("UDP to the fwmark service: %v", err)
		}
		udp[name]++
	}
	if udp["rs1"] != 5 || udp["rs2"] != 5 {
		t.Fatalf("UDP answers %v, want 5/5", udp)
	}

	// ipvsadm's view: FWM services with their connections counted.
	out := d.mustAdm("-L", "-n", "--stats", "--exact")
	if c := statsLine(t, out, "FWM 1"); c[0] != 20 {
		t.Fatalf("FWM 1 counted %d connections, want 20:\n%s", c[0], out)
	}
	if c := statsLine(t, out, "FWM 2"); c[0] != 10 {
		t.Fatalf("FWM 2 counted %d connections, want 10:\n%s", c[0], out)
	}
	if v := metric(t, dir, "uvs_fwmark_packets_total"); v < 30 {
		t.Fatalf("%d marked packets taken, want at least the 20 SYNs and 10 datagrams", v)
	}
	if v := metric(t, dir, "uvs_dataplane_misdirected_total"); v != 0 {
		t.Fatalf("%d packets reached a worker that does not own their connection", v)
	}
	t.Logf("marked packets taken %d, marked copies left to the ring %d, ring copies left to the queue %d, read from the queue %d",
		metric(t, dir, "uvs_fwmark_packets_total"), metric(t, dir, "uvs_fwmark_duplicates_total"),
		metric(t, dir, "uvs_fwmark_deferred_total"), metric(t, dir, "uvs_fwmark_queue_packets_total"))

	// Without the marks the address has no service: nothing answers.
	nft("delete table ip mangle_fw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.topo.Client.Run(ctx, "curl", "-sS", "--max-time", "1", fmt.Sprintf("http://%v/", fwVIP)); err == nil {
		t.Fatalf("an unmarked request was answered: %s", strings.TrimSpace(out))
	}

	// A fwmark service added with uvsadm serves at once: uvsd's queue
	// rule follows the model, not the file.
	d.mustAdm("-A", "-f", "3", "-s", "rr")
	for _, ip := range n.topo.RSIPs {
		d.mustAdm("-a", "-f", "3", "-r", ip.String(), "-m")
	}
	nft(fmt.Sprintf(`add table ip mangle_fw { chain pre { type filter hook prerouting priority mangle; ip daddr %s tcp dport 80 meta mark set 3; }; }`, fwVIP))
	if err := lab.Eventually(ctx, 50*time.Millisecond, func() error {
		_, err := n.topo.Client.Run(ctx, "curl", "-sS", "--max-time", "1", fmt.Sprintf("http://%v/", fwVIP))
		return err
	}); err != nil {
		t.Fatalf("fwmark 3, added with uvsadm, never answered: %v", err)
	}
	got = map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, fmt.Sprintf("http://%v/", fwVIP), 4) {
		got[w]++
	}
	if got["rs1"] != 2 || got["rs2"] != 2 {
		t.Fatalf("fwmark 3 answers %v, want 2/2", got)
	}
}

// TestPrivilegedFWMarkDR is keepalived's "DR with fwmark" setup: one mark
// for HTTP and UDP to the VIP, persistence on the mark, so a client's
// TCP connections and UDP datagrams all reach one real server (IPVS keys
// a fwmark service's template by client and mark, whatever the port or
// protocol), and the servers answer the client directly.
func TestPrivilegedFWMarkDR(t *testing.T) {
	l, client, dir, _ := oneArm(t, "dr")
	conf := `vrrp_instance VI_DR {
    state MASTER
    interface d0
    virtual_router_id 62
    priority 100
    virtual_ipaddress {
        198.18.0.100/24
    }
}
virtual_server fwmark 5 {
    lb_algo rr
    lb_kind DR
    persistence_timeout 60
    real_server 198.18.0.11 {
        weight 1
    }
    real_server 198.18.0.12 {
        weight 1
    }
}
`
	d := startUVSD(t, l, dir, conf, "--workers", "2", "--metrics", "127.0.0.1:9180")
	waitMetric(t, dir, `uvs_vrrp_state{instance="VI_DR"}`, 10*time.Second, "2 (MASTER)", func(v uint64) bool { return v == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rule := `add table ip mangle_dr { chain pre { type filter hook prerouting priority mangle; ip daddr 198.18.0.100 tcp dport 80 meta mark set 5; ip daddr 198.18.0.100 udp dport 5353 meta mark set 5; }; }`
	if out, err := dir.Run(ctx, "nft", rule); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, w := range curlClose(t, client, "http://198.18.0.100/", 10) {
		got[w]++
	}
	for range 5 {
		name, err := udpAsk(client, netip.MustParseAddrPort("198.18.0.100:5353"))
		if err != nil {
			t.Fatalf("UDP: %v", err)
		}
		got[name]++
	}
	if len(got) != 1 || (got["rs1"] != 15 && got["rs2"] != 15) {
		t.Fatalf("answers %v: want all 10 HTTP and 5 UDP from the one server the client's template names", got)
	}
	out := d.mustAdm("-L", "-n", "--stats", "--exact")
	if st := statsLine(t, out, "FWM 5"); st[0] != 15 || st[2] != 0 {
		t.Fatalf("FWM 5: %d connections, %d packets out (want 15 and 0: DR replies bypass the director)\n%s", st[0], st[2], out)
	}
	if listing := d.mustAdm("-L", "-n"); !strings.Contains(listing, "Route") || !strings.Contains(listing, "persistent 60") {
		t.Fatalf("listing:\n%s", listing)
	}
}
