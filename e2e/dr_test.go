package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// oneArm builds a flat lab: client, director and two real servers on one
// bridge, each real server prepared by uvsrs in the given mode and running
// nginx and a UDP echo on 5353.
func oneArm(t *testing.T, mode string) (l *lab.Lab, client, dir *lab.NS, rss []*lab.NS) {
	t.Helper()
	l = lab.NewT(t)
	client, err := l.NS("client")
	if err != nil {
		t.Fatal(err)
	}
	dir, err = l.NS("director")
	if err != nil {
		t.Fatal(err)
	}
	sw, err := l.NS("sw")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Veth(client, "c0", sw, "sc"))
	must(client.Addr("c0", "198.18.0.1/24"))
	must(l.Veth(dir, "d0", sw, "sd"))
	must(dir.Addr("d0", "198.18.0.2/24"))
	must(dir.Sysctl("net.ipv4.ip_forward", "0"))
	ports := []string{"sc", "sd"}
	for i := 1; i <= 2; i++ {
		rs, err := l.NS(fmt.Sprintf("rs%d", i))
		must(err)
		sp := fmt.Sprintf("s%d", i)
		must(l.Veth(rs, "eth0", sw, sp))
		must(rs.Addr("eth0", fmt.Sprintf("198.18.0.%d/24", 10+i)))
		ports = append(ports, sp)
		if _, err := rs.Start(filepath.Join(bin, "uvsrs"), "--vip", "198.18.0.100", "--mode", mode); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.StartNginx(l.Dir(rs.Short()), fmt.Sprintf("rs%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.StartUDPEcho(5353); err != nil {
			t.Fatal(err)
		}
		rss = append(rss, rs)
	}
	must(sw.Bridge("br0", ports...))
	// uvsrs puts the VIP on lo once the host stops answering ARP for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, rs := range rss {
		must(lab.Eventually(ctx, 20*time.Millisecond, func() error {
			_, err := rs.Run(ctx, "sh", "-c", "ip -4 addr show dev lo | grep -q 198.18.0.100")
			return err
		}))
	}
	return l, client, dir, rss
}

// TestPrivilegedDR: a one-armed director in direct-routing mode. The real
// servers hold the VIP on lo (set up by uvsrs) and answer the client
// directly; uvsd only rewrites MACs, and no reply passes through it.
func TestPrivilegedDR(t *testing.T) {
	l, client, dir, _ := oneArm(t, "dr")
	conf := `virtual_server 198.18.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
    }
    real_server 198.18.0.12 80 {
        weight 1
    }
}
`
	d := startUVSD(t, l, dir, conf, "--workers", "1")
	rxBefore := ifStat(t, dir, "d0", "rx_packets")
	got := map[string]int{}
	for _, w := range curlClose(t, client, "http://198.18.0.100/", 200) {
		got[w]++
	}
	if got["rs1"] != 100 || got["rs2"] != 100 {
		t.Fatalf("split %v, want 100/100", got)
	}
	rx := ifStat(t, dir, "d0", "rx_packets") - rxBefore
	out := d.mustAdm("-L", "-n", "--stats", "--exact")
	st := statsLine(t, out, "TCP 198.18.0.100:80")
	if st[0] != 200 {
		t.Errorf("Conns %d, want 200", st[0])
	}
	if st[2] != 0 {
		t.Errorf("OutPkts %d: replies passed through the director\n%s", st[2], out)
	}
	// Everything the director received was the client's (ARP aside):
	// had replies come through it, rx would be about twice InPkts.
	if rx < st[1] || rx > st[1]+10 {
		t.Errorf("director received %d frames for %d client packets", rx, st[1])
	}
	if listing := d.mustAdm("-L", "-n"); !strings.Contains(listing, "Route") {
		t.Errorf("listing does not show Route:\n%s", listing)
	}
}
