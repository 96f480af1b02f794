package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sourcesSince checks that every request nginx logged after the first
// skip ones came from a local address, and returns how many there were.
func sourcesSince(t *testing.T, n *fullNATTopo, skip []int, lips ...string) int {
	t.Helper()
	total := 0
	for i, ng := range n.nginx {
		addrs, err := ng.AccessLogRemoteAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs[skip[i]:] {
			ok := false
			for _, l := range lips {
				ok = ok || a == l
			}
			if !ok {
				t.Fatalf("rs%d saw source %s, want one of the local addresses %v", i+1, a, lips)
			}
		}
		total += len(addrs) - skip[i]
	}
	return total
}

func logCounts(t *testing.T, n *fullNATTopo) []int {
	t.Helper()
	var out []int
	for _, ng := range n.nginx {
		addrs, err := ng.AccessLogRemoteAddrs()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, len(addrs))
	}
	return out
}

// conns matches the counters uvsadm -L -n prints after each real server
// (Weight ActiveConn InActConn): they differ between two directors.
var conns = regexp.MustCompile(`(?m)^(  -> \S+ +\S+ +\S+) +\d+ +\d+ *$`)

// getLAddrConns matches -G's address lines, whose last column (CONNS)
// counts live connections.
var getLAddrConns = regexp.MustCompile(`(?m)^( +\S+ +\d+ +)\d+ *$`)

// TestPrivilegedFullNATAdm: a FULLNAT service configured entirely with
// uvsadm against a running uvsd whose configuration has only an
// unrelated service. Until a local address is added every connection is
// refused (no_local_port); with --add-laddr the servers, which cannot
// reach the client, see the local addresses as the source. Then
// `uvsadm -S -n` piped into a fresh uvsd's `uvsadm -R` reproduces the
// table, local addresses included, and the restored director serves.
func TestPrivilegedFullNATAdm(t *testing.T) {
	n := newFullNATTopo(t)
	const (
		vip  = "198.18.0.100:80"
		lip1 = "198.19.0.200"
		lip2 = "198.19.0.201"
	)
	// Unrelated: another port, NAT, never used.
	conf := `virtual_server 198.18.0.100 8080 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 198.19.64.11 8080 {
        weight 1
    }
}
`
	d := startUVSD(t, n.l, n.dir, conf, "--workers", "2", "--metrics", "127.0.0.1:9180")
	d.mustAdm("-A", "-t", vip, "-s", "rr")
	d.mustAdm("-a", "-t", vip, "-r", "198.19.64.11:80", "-k", "-w", "1")
	d.mustAdm("--add-server", "--tcp-service", vip, "--real-server", "198.19.64.12:80", "--fullnat")

	// No local address: the SYNs are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := n.client.Run(ctx, "curl", "-sS", "--max-time", "2", "http://"+vip+"/")
	cancel()
	if err == nil {
		t.Fatalf("a FULLNAT service without local addresses answered: %s", out)
	}
	if v := metric(t, n.dir, `uvs_dataplane_drops_total{reason="no_local_port"}`); v == 0 {
		t.Errorf("no_local_port drops %d, want the refused SYNs counted", v)
	}
	if got := d.mustAdm("-G", "-t", vip); !strings.Contains(got, "198.18.0.100:80      0        \n") {
		t.Errorf("-G before --add-laddr:\n%s", got)
	}

	d.mustAdm("--add-laddr", "-t", vip, "-z", lip1)
	d.mustAdm("-P", "-t", vip, "-z", lip2)
	if out, err := d.adm("-P", "-t", vip, "-z", lip1); err == nil || !strings.Contains(out, "Local address already exists") {
		t.Errorf("adding %s twice: %v %s", lip1, err, out)
	}
	if out, err := d.adm("-Q", "-t", vip, "-z", "198.19.0.202"); err == nil || !strings.Contains(out, "No such Local address") {
		t.Errorf("deleting an absent local address: %v %s", err, out)
	}
	if out, err := d.adm("-P", "-t", "198.18.0.100:81", "-z", lip1); err == nil || !strings.Contains(out, "Service not defined") {
		t.Errorf("local address for an absent service: %v %s", err, out)
	}
	if out, err := d.adm("-G", "-t", "198.18.0.100:81"); err == nil || !strings.Contains(out, "No such service") {
		t.Errorf("-G of an absent service: %v %s", err, out)
	}

	skip := logCounts(t, n)
	got := map[string]int{}
	for _, w := range curlClose(t, n.client, "http://"+vip+"/", 100) {
		got[w]++
	}
	// rr is shared by the workers, but a SYN refused for want of a
	// local port (before -P) and retried can shift the sequence: about
	// 50/50 is what this test asks.
	if got["rs1"]+got["rs2"] != 100 || got["rs1"] < 35 || got["rs2"] < 35 {
		t.Fatalf("rr split %v, want about 50/50", got)
	}
	if seen := sourcesSince(t, n, skip, lip1, lip2); seen != 100 {
		t.Fatalf("nginx logged %d requests, want 100", seen)
	}

	g := d.mustAdm("-G")
	t.Logf("uvsadm -G:\n%s", g)
	for _, want := range []string{
		"VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n",
		"198.18.0.100:80      2        \n",
		"198.18.0.100:8080    0        \n",
	} {
		if !strings.Contains(g, want) {
			t.Errorf("-G lacks %q", want)
		}
	}
	// Both local addresses carry tracked connections (TIME_WAIT).
	var used int
	for _, lip := range []string{lip1, lip2} {
		m := regexp.MustCompile(`(?m)^ +` + regexp.QuoteMeta(lip) + ` +0 +(\d+) *$`).FindStringSubmatch(g)
		if m == nil {
			t.Fatalf("-G has no line for %s", lip)
		}
		var c int
		fmt.Sscan(m[1], &c)
		if c == 0 {
			t.Errorf("-G shows no connections on %s", lip)
		}
		used += c
	}
	if used > 100 {
		t.Errorf("-G counts %d connections on the local addresses, want at most 100", used)
	}

	save := d.mustAdm("-S", "-n")
	t.Logf("uvsadm -S -n:\n%s", save)
	for _, want := range []string{
		"-A -t 198.18.0.100:80 -s rr\n" +
			"-a -t 198.18.0.100:80 -r 198.19.64.11:80 --fullnat -w 1\n" +
			"-a -t 198.18.0.100:80 -r 198.19.64.12:80 --fullnat -w 1\n" +
			"--add-laddr -t 198.18.0.100:80 -z " + lip1 + "\n" +
			"--add-laddr -t 198.18.0.100:80 -z " + lip2 + "\n",
		"-A -t 198.18.0.100:8080 -s wlc\n",
	} {
		if !strings.Contains(save, want) {
			t.Errorf("-S -n lacks\n%s", want)
		}
	}
	list := conns.ReplaceAllString(d.mustAdm("-L", "-n"), "$1")
	laddrs := getLAddrConns.ReplaceAllString(g, "$1")

	// A fresh uvsd, cleared and restored from the save. (uvsd refuses
	// to start with nothing to serve, so it gets the same configuration
	// and -C empties its table, as ipvsadm -C before ipvsadm -R.)
	if err := d.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	d2 := startUVSD(t, n.l, n.dir, conf, "--workers", "2")
	d2.mustAdm("-C")
	if got := d2.mustAdm("-S", "-n"); got != "" {
		t.Fatalf("fresh uvsd has a table after -C:\n%s", got)
	}
	d2.restore(save)
	if got := d2.mustAdm("-S", "-n"); got != save {
		t.Errorf("-S -n after -R:\n%s\nwant\n%s", got, save)
	}
	if got := conns.ReplaceAllString(d2.mustAdm("-L", "-n"), "$1"); got != list {
		t.Errorf("-L -n after -R:\n%s\nwant\n%s", got, list)
	}
	if got := getLAddrConns.ReplaceAllString(d2.mustAdm("-G"), "$1"); got != laddrs {
		t.Errorf("-G after -R:\n%s\nwant\n%s", got, laddrs)
	}

	// And it serves, from the same local addresses.
	skip = logCounts(t, n)
	if answers := curlClose(t, n.client, "http://"+vip+"/", 20); len(answers) != 20 {
		t.Fatalf("restored director answered %d of 20", len(answers))
	}
	if seen := sourcesSince(t, n, skip, lip1, lip2); seen != 20 {
		t.Fatalf("nginx logged %d requests after the restore, want 20", seen)
	}

	// -Q takes one away: new connections use the other only.
	d2.mustAdm("--del-laddr", "-t", vip, "-z", lip1)
	if got := d2.mustAdm("-G", "-t", vip); !strings.Contains(got, "198.18.0.100:80      1        \n") || strings.Contains(got, lip1) {
		t.Errorf("-G after -Q %s:\n%s", lip1, got)
	}
	skip = logCounts(t, n)
	curlClose(t, n.client, "http://"+vip+"/", 10)
	if seen := sourcesSince(t, n, skip, lip2); seen != 10 {
		t.Fatalf("nginx logged %d requests after -Q, want 10", seen)
	}
}
