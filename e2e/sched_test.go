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

// udpAsk sends one datagram from a fresh socket (a fresh source port, so a
// new connection) and returns the name of the real server that answered.
func udpAsk(ns *lab.NS, to netip.AddrPort) (string, error) {
	reply, err := ns.UDPAsk(to, "x")
	name, _, _ := strings.Cut(reply, ":")
	return name, err
}

// TestPrivilegedPersistence: with persistence_timeout, every new
// connection from the client goes to one real server while the template
// lives (a template outlives its timeout while it controls connections,
// as IPVS's does); once the template expires, rr moves the client on.
// With two workers the steering keeps a client's connections on one
// worker, whose table holds the template.
func TestPrivilegedPersistence(t *testing.T) {
	for _, workers := range []string{"1", "2"} {
		t.Run("workers="+workers, func(t *testing.T) { testPersistence(t, workers) })
	}
}

func testPersistence(t *testing.T, workers string) {
	n := newNATLab(t, lab.NATOptions{})
	extra := fmt.Sprintf(`global_defs {
    lvs_timeouts udp 1
}
virtual_server %[1]s 55 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    persistence_timeout 1
    real_server %[2]s 5353 {
        weight 1
    }
    real_server %[3]s 5353 {
        weight 1
    }
}`, n.topo.VIP, n.topo.RSIPs[0], n.topo.RSIPs[1])
	d := startUVSD(t, n.l, n.topo.Director, n.conf(extra), "--workers", workers)
	to := netip.AddrPortFrom(n.topo.VIP, 55)
	first := ""
	for i := 0; i < 6; i++ {
		got, err := udpAsk(n.topo.Client, to)
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = got
		}
		if got != first {
			t.Fatalf("connection %d went to %s, the template says %s", i, got, first)
		}
	}
	out := d.mustAdm("-L", "-n", "-c")
	if !strings.Contains(out, "IP  ") || !strings.Contains(out, fmt.Sprintf("%v:0", n.topo.ClientIP)) {
		t.Errorf("no persistence template in the connection listing:\n%s", out)
	}
	// Wait for the connections (udp 1 s) and then the template (1 s) to go.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := lab.Eventually(ctx, 100*time.Millisecond, func() error {
		out, err := d.adm("-L", "-n", "-c")
		if err != nil {
			return err
		}
		if strings.Contains(out, fmt.Sprintf("%v:55", n.topo.VIP)) {
			return fmt.Errorf("entries left:\n%s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := udpAsk(n.topo.Client, to)
	if err != nil {
		t.Fatal(err)
	}
	if got == first {
		t.Fatalf("after the template expired the client stayed on %s; rr should move it", got)
	}
}

// TestPrivilegedSourceHash: sh keeps each client on one server; the
// client's new connections from many ports all land on the same one.
func TestPrivilegedSourceHash(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	extra := fmt.Sprintf(`virtual_server %[1]s 56 {
    lb_algo sh
    lb_kind NAT
    protocol UDP
    real_server %[2]s 5353 {
        weight 1
    }
    real_server %[3]s 5353 {
        weight 1
    }
}`, n.topo.VIP, n.topo.RSIPs[0], n.topo.RSIPs[1])
	startUVSD(t, n.l, n.topo.Director, n.conf(extra), "--workers", "2")
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		got, err := udpAsk(n.topo.Client, netip.AddrPortFrom(n.topo.VIP, 56))
		if err != nil {
			t.Fatal(err)
		}
		seen[got]++
	}
	if len(seen) != 1 {
		t.Fatalf("sh spread one client over %v", seen)
	}
}
