package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedVRRPColocated: the LVS docs' directors-as-real-servers
// setup, one-armed DR. Two directors (VRRP MASTER and BACKUP) are also
// real servers of the service, with a third real server beside them.
// With keepalived and IPVS the directors loop packets between them unless
// the operator marks MACs by hand; uvsd must not, out of the box: every
// request is answered, rr splits 300 connections about 100/100/100, the MASTER
// never sees a packet come back from the BACKUP, the BACKUP forwards
// nothing and leaves what the MASTER scheduled to it to its own host, and
// the MASTER's own kernel serves only the connections scheduled to it.
func TestPrivilegedVRRPColocated(t *testing.T) {
	l := lab.NewT(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	client, err := l.NS("client")
	must(err)
	sw, err := l.NS("sw")
	must(err)
	must(l.Veth(client, "c0", sw, "sc"))
	must(client.Addr("c0", "198.18.0.1/24"))
	ports := []string{"sc"}
	const vip = "198.18.0.100"
	type node struct {
		ns    *lab.NS
		name  string
		ip    string
		nginx *lab.Nginx
	}
	nodes := []*node{{name: "dirA", ip: "198.18.0.2"}, {name: "dirB", ip: "198.18.0.3"}, {name: "rs3", ip: "198.18.0.13"}}
	for i, n := range nodes {
		n.ns, err = l.NS(n.name)
		must(err)
		sp := fmt.Sprintf("s%d", i)
		must(l.Veth(n.ns, "eth0", sw, sp))
		must(n.ns.Addr("eth0", n.ip+"/24"))
		must(n.ns.Sysctl("net.ipv4.ip_forward", "0"))
		ports = append(ports, sp)
		if _, err := n.ns.Start(filepath.Join(bin, "uvsrs"), "--vip", vip, "--mode", "dr"); err != nil {
			t.Fatal(err)
		}
		n.nginx, err = n.ns.StartNginx(l.Dir(n.name), n.name)
		must(err)
	}
	must(sw.Bridge("br0", ports...))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range nodes {
		must(lab.Eventually(ctx, 20*time.Millisecond, func() error {
			_, err := n.ns.Run(ctx, "sh", "-c", "ip -4 addr show dev lo | grep -q "+vip)
			return err
		}))
	}

	notify := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	conf := func(i int, state string, prio int) string {
		script, err := lab.WriteNotifyScript(notify[i])
		must(err)
		c := fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_version 3
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 61
    priority %d
    advert_int 0.1
    notify %q
    virtual_ipaddress {
        %s/24
    }
}
virtual_server %s 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
`, nodes[i].name, state, prio, script, vip, vip)
		for _, n := range nodes {
			c += fmt.Sprintf("    real_server %s 80 {\n        weight 1\n    }\n", n.ip)
		}
		return c + "}\n"
	}
	startUVSD(t, l, nodes[0].ns, conf(0, "MASTER", 150), "--metrics", "127.0.0.1:9180")
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	must(lab.WaitState(wctx, notify[0], "VI_1", "MASTER"))
	startUVSD(t, l, nodes[1].ns, conf(1, "BACKUP", 100), "--metrics", "127.0.0.1:9180")
	must(lab.WaitState(wctx, notify[1], "VI_1", "BACKUP"))
	// The BACKUP knows the MASTER's MAC from its adverts.
	waitMetric(t, nodes[1].ns, `uvs_vrrp_adverts_received_total{instance="VI_1"}`, 5*time.Second,
		"an advert", func(n uint64) bool { return n > 0 })

	got := map[string]int{}
	for _, w := range curlClose(t, client, "http://"+vip+"/", 300) {
		got[w]++
	}
	// rr gives 100 each; a client port reused while its old
	// connection is in FIN_WAIT goes to the old server, as in IPVS
	// (conn_reuse_mode 1), so allow a little slack.
	if got["dirA"]+got["dirB"]+got["rs3"] != 300 || got["dirA"] < 90 || got["dirB"] < 90 || got["rs3"] < 90 {
		t.Errorf("split %v, want about 100 each", got)
	}
	if n := metric(t, nodes[0].ns, "uvs_dataplane_from_peer_total"); n != 0 {
		t.Errorf("the MASTER saw %d packets come back from the other director", n)
	}
	if n := metric(t, nodes[0].ns, "uvs_dataplane_local_delivered_total"); n < uint64(got["dirA"]) {
		t.Errorf("the MASTER handed %d packets to its own host, want one SYN per connection at least", n)
	}
	if n := metric(t, nodes[1].ns, "uvs_dataplane_from_peer_total"); n < uint64(got["dirB"]) {
		t.Errorf("the BACKUP left %d packets from the MASTER to its host, want one per connection at least", n)
	}
	if n := metric(t, nodes[1].ns, "uvs_dataplane_tx_frames_total"); n != 0 {
		t.Errorf("the BACKUP transmitted %d frames", n)
	}
	// The guard: each host's nginx logged exactly the requests the
	// client got its answer from, none twice.
	for _, n := range nodes {
		addrs, err := n.nginx.AccessLogRemoteAddrs()
		must(err)
		if len(addrs) != got[n.name] {
			t.Errorf("%s's nginx logged %d requests, the client got %d answers from it", n.name, len(addrs), got[n.name])
		}
	}
}
