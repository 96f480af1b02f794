package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedAFXDP runs the NAT lab through uvsd's afxdp backend: the
// XDP program on both director interfaces redirects the VIP's traffic and
// the real servers' replies to AF_XDP sockets, while ARP and the
// director's own health checks stay with the kernel and the AF_PACKET
// ring. The senders' offloads are on: their partial checksums reach the
// sockets unmarked (XDP drops the skb's checksum state) and uvs must
// finish them.
func TestPrivilegedAFXDP(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	topo := n.topo
	conf := tcpCheckedService(topo.VIP, "0.2", "0.1", topo.RSIPs...) + fmt.Sprintf(`
virtual_server %v 53 {
    lb_algo rr
    lb_kind NAT
    protocol UDP
    real_server %v 5353 {
        weight 1
    }
    real_server %v 5353 {
        weight 1
    }
}
`, topo.VIP, topo.RSIPs[0], topo.RSIPs[1])
	d := startUVSD(t, n.l, topo.Director, conf, "--backend", "afxdp", "--metrics", "127.0.0.1:9180")

	for _, dev := range []string{lab.NATDirClientDev, lab.NATDirServerDev} {
		if !xdpAttached(t, topo.Director, dev) {
			t.Fatalf("no XDP program on %s after start", dev)
		}
	}

	t.Run("ping", n.ping)

	rx0 := metric(t, topo.Director, "uvs_xsk_rx_frames_total")
	sent0 := ifStat(t, topo.Client, "c0", "tx_packets")
	recv0 := ifStat(t, topo.Client, "c0", "rx_packets")
	t.Run("rr splits 200 new connections 100/100", n.rrSplit)

	t.Run("the frames came through the AF_XDP sockets", func(t *testing.T) {
		// Both legs of every connection came by the sockets: the
		// client's frames and the real servers' replies (what the
		// client received), bar the odd ARP frame, which stays on
		// the ring. The health checks' frames, to the director's own
		// address, must not have.
		rx := metric(t, topo.Director, "uvs_xsk_rx_frames_total") - rx0
		sent := ifStat(t, topo.Client, "c0", "tx_packets") - sent0
		recv := ifStat(t, topo.Client, "c0", "rx_packets") - recv0
		if want := sent + recv; rx > want || rx+8 < want {
			t.Errorf("AF_XDP sockets took %d frames; the client sent %d and received %d", rx, sent, recv)
		}
		if tx := metric(t, topo.Director, "uvs_xsk_tx_frames_total"); tx < rx0+rx-8 {
			t.Errorf("AF_XDP sockets sent %d frames, took %d", tx, rx0+rx)
		}
		// metric fails on a missing line, so a renamed metric cannot
		// pass this unchecked.
		for _, r := range []string{"rx_dropped", "rx_invalid", "tx_invalid", "rx_ring_full", "fill_ring_empty"} {
			if v := metric(t, topo.Director, `uvs_xsk_kernel_drops_total{reason="`+r+`"}`); v != 0 {
				t.Errorf("kernel AF_XDP drops, %s: %d", r, v)
			}
		}
	})

	t.Run("health checks stay with the kernel", func(t *testing.T) {
		// The checks' replies come from the real servers' port 80, as
		// the VIP's do, but to the director's own address: the
		// program must pass them, or the servers would fail their
		// checks. Stop rs2's nginx, see it leave, start it, see it
		// come back.
		if err := n.nginx[1].Stop(); err != nil {
			t.Fatal(err)
		}
		rs2 := fmt.Sprintf("-> %v:80", topo.RSIPs[1])
		waitTable(t, d, func(out string) bool { return !strings.Contains(out, rs2) }, "rs2 to leave")
		if err := n.nginx[1].Start(); err != nil {
			t.Fatal(err)
		}
		waitTable(t, d, func(out string) bool { return strings.Contains(out, rs2) }, "rs2 to come back")
		out := d.mustAdm("-L", "-n")
		if !strings.Contains(out, fmt.Sprintf("-> %v:80", topo.RSIPs[0])) {
			t.Fatalf("rs1 left the pool while it was up:\n%s", out)
		}
	})

	t.Run("10 MB download, sender offloads on", n.download)
	// 4 MB from the client: every frame leaves it with a partial checksum.
	t.Run("upload through the VIP", n.upload)
	t.Run("UDP through the VIP", n.udpRR)

	t.Run("a killed uvsd leaves no program behind", func(t *testing.T) {
		// The programs hang on bpf_links, which die with the process.
		if err := d.proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-d.proc.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := lab.Eventually(ctx, 50*time.Millisecond, func() error {
			for _, dev := range []string{lab.NATDirClientDev, lab.NATDirServerDev} {
				if xdpAttached(t, topo.Director, dev) {
					return fmt.Errorf("XDP program still on %s", dev)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// xdpAttached reports whether dev in ns has an XDP program.
func xdpAttached(t *testing.T, ns *lab.NS, dev string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "ip", "-d", "link", "show", "dev", dev)
	if err != nil {
		t.Fatalf("ip link show %s: %v\n%s", dev, err, out)
	}
	return strings.Contains(out, "prog/xdp")
}

// waitTable polls `uvsadm -L -n` until ok holds, for at most 15 s.
func waitTable(t *testing.T, d *director, ok func(string) bool, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var last string
	err := lab.Eventually(ctx, 50*time.Millisecond, func() error {
		out, err := d.adm("-L", "-n")
		if err != nil {
			return err
		}
		last = out
		if !ok(out) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v\n%s", what, err, last)
	}
}
