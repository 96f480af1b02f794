package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedFullNAT: real servers in another subnet, behind a router,
// with no route back to the client. uvsd rewrites both ends: the servers
// see a local address of uvsd's as the source, and 20,000 short
// connections in a row never collide on a local port.
func TestPrivilegedFullNAT(t *testing.T) {
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
	client, dir, router := mk("client"), mk("director"), mk("router")
	must(l.Veth(client, "c0", dir, "d0"))
	must(client.Addr("c0", "198.18.0.1/24"))
	must(dir.Addr("d0", "198.18.0.2/24"))
	must(l.Veth(dir, "d1", router, "r0"))
	must(dir.Addr("d1", "198.19.0.1/24"))
	must(dir.Route("198.19.64.0/24", "via", "198.19.0.254"))
	must(dir.Sysctl("net.ipv4.ip_forward", "0"))
	must(router.Addr("r0", "198.19.0.254/24"))
	must(router.Sysctl("net.ipv4.ip_forward", "1"))
	sw := mk("sw")
	must(l.Veth(router, "r1", sw, "sr"))
	must(router.Addr("r1", "198.19.64.1/24"))
	ports := []string{"sr"}
	var nginx []*lab.Nginx
	for i := 1; i <= 2; i++ {
		rs := mk(fmt.Sprintf("rs%d", i))
		sp := fmt.Sprintf("s%d", i)
		must(l.Veth(rs, "eth0", sw, sp))
		must(rs.Addr("eth0", fmt.Sprintf("198.19.64.%d/24", 10+i)))
		must(rs.Route("default", "via", "198.19.64.1"))
		ng, err := rs.StartNginx(l.Dir(rs.Short()), fmt.Sprintf("rs%d", i))
		must(err)
		nginx = append(nginx, ng)
		ports = append(ports, sp)
	}
	must(sw.Bridge("br0", ports...))
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
	d := startUVSD(t, l, dir, conf, "--workers", "2", "--metrics", "127.0.0.1:9180")
	got := map[string]int{}
	for _, w := range curlClose(t, client, "http://198.18.0.100/", 200) {
		got[w]++
	}
	if got["rs1"]+got["rs2"] != 200 || got["rs1"] < 90 || got["rs2"] < 90 {
		t.Fatalf("split %v, want about 100/100", got)
	}
	for i, ng := range nginx {
		addrs, err := ng.AccessLogRemoteAddrs()
		must(err)
		for _, a := range addrs {
			if a != "198.19.0.200" && a != "198.19.0.201" {
				t.Fatalf("rs%d saw source %s, want a local address", i+1, a)
			}
		}
	}
	// The client is unreachable from the servers: only FULLNAT works.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := router.Run(ctx, "ip", "route", "get", "198.18.0.1"); err == nil {
		t.Fatalf("the servers' router has a route to the client, the test proves nothing: %s", out)
	}

	const many = 20000
	start := time.Now()
	answers := curlClose(t, client, "http://198.18.0.100/", many)
	if len(answers) != many {
		t.Fatalf("%d of %d short connections answered", len(answers), many)
	}
	t.Logf("%d connections in %v", many, time.Since(start))
	for _, name := range []string{"uvs_dataplane_misdirected_total"} {
		if v := metric(t, dir, name); v != 0 {
			t.Errorf("%s = %d", name, v)
		}
	}
	out := d.mustAdm("-L", "-n", "--stats", "--exact")
	if st := statsLine(t, out, "TCP 198.18.0.100:80"); st[0] != 200+many {
		t.Errorf("Conns %d, want %d\n%s", st[0], 200+many, out)
	}
	if !strings.Contains(d.mustAdm("-L", "-n"), "FullNat") {
		t.Error("listing does not show FullNat")
	}
}
