package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// fullNATTopo is the FULLNAT tests' network: the client on
// 198.18.0.0/24, the director, a router to the servers' 198.19.64.0/24
// that has no route back to the client, two nginx servers.
type fullNATTopo struct {
	l                   *lab.Lab
	client, dir, router *lab.NS
	nginx               []*lab.Nginx
}

func newFullNATTopo(t *testing.T) *fullNATTopo {
	t.Helper()
	l := lab.NewT(t)
	mk := func(name string) *lab.NS {
		ns, err := l.NS(name)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	n := &fullNATTopo{l: l, client: mk("client"), dir: mk("director"), router: mk("router")}
	must(l.Veth(n.client, "c0", n.dir, "d0"))
	must(n.client.Addr("c0", "198.18.0.1/24"))
	must(n.dir.Addr("d0", "198.18.0.2/24"))
	must(l.Veth(n.dir, "d1", n.router, "r0"))
	must(n.dir.Addr("d1", "198.19.0.1/24"))
	must(n.dir.Route("198.19.64.0/24", "via", "198.19.0.254"))
	must(n.dir.Sysctl("net.ipv4.ip_forward", "0"))
	must(n.router.Addr("r0", "198.19.0.254/24"))
	must(n.router.Sysctl("net.ipv4.ip_forward", "1"))
	sw := mk("sw")
	must(l.Veth(n.router, "r1", sw, "sr"))
	must(n.router.Addr("r1", "198.19.64.1/24"))
	ports := []string{"sr"}
	for i := 1; i <= 2; i++ {
		rs := mk(fmt.Sprintf("rs%d", i))
		sp := fmt.Sprintf("s%d", i)
		must(l.Veth(rs, "eth0", sw, sp))
		must(rs.Addr("eth0", fmt.Sprintf("198.19.64.%d/24", 10+i)))
		must(rs.Route("default", "via", "198.19.64.1"))
		ng, err := rs.StartNginx(l.Dir(rs.Short()), fmt.Sprintf("rs%d", i))
		must(err)
		n.nginx = append(n.nginx, ng)
		ports = append(ports, sp)
	}
	must(sw.Bridge("br0", ports...))
	return n
}

// TestPrivilegedFullNAT: real servers in another subnet, behind a router,
// with no route back to the client. uvsd rewrites both ends: the servers
// see a local address of uvsd's as the source, and 20,000 short
// connections in a row never collide on a local port.
func TestPrivilegedFullNAT(t *testing.T) {
	n := newFullNATTopo(t)
	conf := `local_address_group lips {
    198.19.0.200
    198.19.0.201
}
virtual_server 198.18.0.100 80 {
    lb_algo rr
    lb_kind FNAT
    laddr_group_name lips
    protocol TCP
    real_server 198.19.64.11 80 {
        weight 1
    }
    real_server 198.19.64.12 80 {
        weight 1
    }
}
`
	d := startUVSD(t, n.l, n.dir, conf, "--workers", "2", "--metrics", "127.0.0.1:9180")
	got := map[string]int{}
	for _, w := range curlClose(t, n.client, "http://198.18.0.100/", 200) {
		got[w]++
	}
	if got["rs1"]+got["rs2"] != 200 || got["rs1"] < 90 || got["rs2"] < 90 {
		t.Fatalf("split %v, want about 100/100", got)
	}
	for i, ng := range n.nginx {
		addrs, err := ng.AccessLogRemoteAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a != "198.19.0.200" && a != "198.19.0.201" {
				t.Fatalf("rs%d saw source %s, want a local address", i+1, a)
			}
		}
	}
	// The client is unreachable from the servers: only FULLNAT works.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := n.router.Run(ctx, "ip", "route", "get", "198.18.0.1"); err == nil {
		t.Fatalf("the servers' router has a route to the client, the test proves nothing: %s", out)
	}

	const many = 20000
	start := time.Now()
	answers := curlClose(t, n.client, "http://198.18.0.100/", many)
	if len(answers) != many {
		t.Fatalf("%d of %d short connections answered", len(answers), many)
	}
	t.Logf("%d connections in %v", many, time.Since(start))
	if v := metric(t, n.dir, "uvs_dataplane_misdirected_total"); v != 0 {
		t.Errorf("uvs_dataplane_misdirected_total = %d", v)
	}
	out := d.mustAdm("-L", "-n", "--stats", "--exact")
	if st := statsLine(t, out, "TCP 198.18.0.100:80"); st[0] != 200+many {
		t.Errorf("Conns %d, want %d\n%s", st[0], 200+many, out)
	}
	if !strings.Contains(d.mustAdm("-L", "-n"), "FullNat") {
		t.Error("listing does not show FullNat")
	}
}
