package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// natLab is the standard two-armed NAT lab with nginx and a UDP echo on
// every real server.
type natLab struct {
	l     *lab.Lab
	topo  *lab.NAT
	nginx []*lab.Nginx
}

func newNATLab(t *testing.T, opts lab.NATOptions) *natLab {
	t.Helper()
	l := lab.NewT(t)
	topo, err := lab.NATTopology(l, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := &natLab{l: l, topo: topo}
	for i, rs := range topo.RS {
		ng, err := rs.StartNginx(l.Dir(rs.Short()), fmt.Sprintf("rs%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		n.nginx = append(n.nginx, ng)
		if _, err := rs.StartUDPEcho(5353); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (n *natLab) conf(extra string) string { return n.topo.KeepalivedConf("\n" + extra) }

func (n *natLab) vipURL() string { return fmt.Sprintf("http://%v/", n.topo.VIP) }

// ping pings the VIP from the client (uvs answers).
func (n *natLab) ping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.topo.Client.Run(ctx, "ping", "-c", "2", "-i", "0.2", "-W", "2", n.topo.VIP.String()); err != nil {
		t.Fatalf("ping VIP: %v\n%s", err, out)
	}
}

// rrSplit opens 200 connections to the VIP: rr must split them 100/100.
func (n *natLab) rrSplit(t *testing.T) {
	got := map[string]int{}
	for _, w := range curlClose(t, n.topo.Client, n.vipURL(), 200) {
		got[w]++
	}
	if got["rs1"] != 100 || got["rs2"] != 100 || len(got) != 2 {
		t.Fatalf("split %v, want rs1:100 rs2:100", got)
	}
}

// download fetches nginx's 10 MB /big through the VIP and checks its hash.
func (n *natLab) download(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := n.topo.Client.Exec(ctx, "curl", "-sS", "--fail", "--max-time", "50", n.vipURL()+"big")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	nbytes, _ := io.Copy(h, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl /big: %v (%d bytes)", err, nbytes)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want := n.nginx[0].BigSHA256(); got != want {
		t.Fatalf("sha256 %s (%d bytes), want %s", got, nbytes, want)
	}
}

// upload POSTs 4 MB through the VIP.
func (n *natLab) upload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := n.topo.Client.Run(ctx, "sh", "-c",
		fmt.Sprintf("head -c 4000000 /dev/zero | curl -sS --max-time 50 -o /dev/null -w '%%{http_code} %%{size_upload}' --data-binary @- %s", n.vipURL()))
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	if f := strings.Fields(out); len(f) != 2 || f[1] != "4000000" {
		t.Fatalf("upload: %q, want 4000000 bytes sent", out)
	}
}

// udpRR asks the VIP's UDP echo four times: the replies must carry their
// payload and come from both real servers.
func (n *natLab) udpRR(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		msg := fmt.Sprintf("ping-%d", i)
		reply, err := n.topo.Client.UDPAsk(netip.AddrPortFrom(n.topo.VIP, 53), msg)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		name, payload, _ := strings.Cut(reply, ":")
		if payload != msg {
			t.Fatalf("reply %q, want payload %q", reply, msg)
		}
		seen[name] = true
	}
	if len(seen) != 2 {
		t.Fatalf("UDP replies came from %v, want both real servers (rr)", seen)
	}
}

// curlClose runs one curl with count URLs, each request on a new
// connection, and returns the response bodies' words.
func curlClose(t *testing.T, ns *lab.NS, url string, count int) []string {
	t.Helper()
	args := []string{"-sS", "--fail", "--max-time", "10", "-H", "Connection: close"}
	for i := 0; i < count; i++ {
		args = append(args, url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "curl", args...)
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	return strings.Fields(out)
}

// statsLine finds a line of `uvsadm -L -n --stats --exact` and returns its
// five counters.
func statsLine(t *testing.T, out, prefix string) [5]uint64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		key := f[0]
		rest := f[1:]
		if key == "->" || key == "TCP" || key == "UDP" || key == "FWM" {
			if len(f) < 2 {
				continue
			}
			key += " " + f[1]
			rest = f[2:]
		}
		if key != prefix || len(rest) != 5 {
			continue
		}
		var v [5]uint64
		for i, s := range rest {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("stats line %q: %v", line, err)
			}
			v[i] = n
		}
		return v
	}
	t.Fatalf("no stats line %q in:\n%s", prefix, out)
	return [5]uint64{}
}

func ifStat(t *testing.T, ns *lab.NS, dev, stat string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "cat", "/sys/class/net/"+dev+"/statistics/"+stat)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPrivilegedNAT is the walking skeleton end to end: a client reaches
// two nginx real servers through uvsd in NAT mode, with the senders'
// offloads left on.
func TestPrivilegedNAT(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	topo := n.topo
	// One worker: IPVS's rr is one sequence per service, and so is uvs's per worker.
	d := startUVSD(t, n.l, topo.Director, n.conf(""), "--workers", "1", "--metrics", "127.0.0.1:9180")
	xskTx0 := metric(t, topo.Director, "uvs_xsk_tx_frames_total")

	t.Run("ping", n.ping)

	var before [5]uint64
	clientTx := ifStat(t, topo.Client, "c0", "tx_packets")
	clientRx := ifStat(t, topo.Client, "c0", "rx_packets")
	clientTxB := ifStat(t, topo.Client, "c0", "tx_bytes")
	clientRxB := ifStat(t, topo.Client, "c0", "rx_bytes")
	before = statsLine(t, d.mustAdm("-L", "-n", "--stats", "--exact"), fmt.Sprintf("TCP %v:80", topo.VIP))

	t.Run("rr splits 200 new connections 100/100", n.rrSplit)

	t.Run("stats count the traffic", func(t *testing.T) {
		out := d.mustAdm("-L", "-n", "--stats", "--exact")
		after := statsLine(t, out, fmt.Sprintf("TCP %v:80", topo.VIP))
		sent := ifStat(t, topo.Client, "c0", "tx_packets") - clientTx
		recv := ifStat(t, topo.Client, "c0", "rx_packets") - clientRx
		conns, in, outp := after[0]-before[0], after[1]-before[1], after[2]-before[2]
		if conns != 200 {
			t.Errorf("service Conns grew by %d, want 200\n%s", conns, out)
		}
		// Every frame the client sent in that phase went to the VIP,
		// bar the odd ARP refresh; likewise what it received.
		if in > sent || sent-in > 4 {
			t.Errorf("service InPkts grew by %d, client sent %d frames\n%s", in, sent, out)
		}
		if outp > recv || recv-outp > 4 {
			t.Errorf("service OutPkts grew by %d, client received %d frames\n%s", outp, recv, out)
		}
		// Bytes are IP bytes: the client's frame bytes less their
		// Ethernet headers (a super-frame is one packet both ways),
		// within a few ARP frames.
		inB, outB := after[3]-before[3], after[4]-before[4]
		sentB := ifStat(t, topo.Client, "c0", "tx_bytes") - clientTxB - 14*sent
		recvB := ifStat(t, topo.Client, "c0", "rx_bytes") - clientRxB - 14*recv
		near := func(a, b uint64) bool { return max(a, b)-min(a, b) <= 4*60 }
		if !near(inB, sentB) {
			t.Errorf("service InBytes grew by %d, the client sent %d IP bytes\n%s", inB, sentB, out)
		}
		if !near(outB, recvB) {
			t.Errorf("service OutBytes grew by %d, the client received %d IP bytes\n%s", outB, recvB, out)
		}
		for i, rip := range topo.RSIPs {
			rs := statsLine(t, out, fmt.Sprintf("-> %v:80", rip))
			if rs[0] < 100 {
				t.Errorf("rs%d Conns %d, want >= 100", i+1, rs[0])
			}
		}
	})

	t.Run("frames left by the AF_XDP transmit ring", func(t *testing.T) {
		// The default -xsk-tx: a transmit-only socket on each veth's
		// one queue takes every frame that is not a super-frame; no
		// program is attached, so nothing is received through it.
		if tx := metric(t, topo.Director, "uvs_xsk_tx_frames_total") - xskTx0; tx < 1000 {
			t.Errorf("AF_XDP sockets sent %d frames for 200 connections, want at least 1000", tx)
		}
		if rx := metric(t, topo.Director, "uvs_xsk_rx_frames_total"); rx != 0 {
			t.Errorf("AF_XDP sockets received %d frames, want none without -backend afxdp", rx)
		}
		for _, dev := range []string{lab.NATDirClientDev, lab.NATDirServerDev} {
			if xdpAttached(t, topo.Director, dev) {
				t.Errorf("an XDP program on %s without -backend afxdp", dev)
			}
		}
	})

	t.Run("NAT keeps the client address", func(t *testing.T) {
		for i, ng := range n.nginx {
			addrs, err := ng.AccessLogRemoteAddrs()
			if err != nil {
				t.Fatal(err)
			}
			if len(addrs) < 100 {
				t.Fatalf("rs%d logged %d requests, want >= 100", i+1, len(addrs))
			}
			for _, a := range addrs {
				if a != topo.ClientIP.String() {
					t.Fatalf("rs%d saw remote address %s, want the client's %v", i+1, a, topo.ClientIP)
				}
			}
		}
	})

	t.Run("10 MB download, sender offloads on", n.download)
	// A POST of 4 MB: the client's TCP sends super-frames that uvsd must
	// forward whole with their GSO metadata.
	t.Run("upload through the VIP, client TSO on", n.upload)
	t.Run("UDP through the VIP", n.udpRR)

	t.Run("listing", func(t *testing.T) {
		out := d.mustAdm("-L", "-n")
		for _, want := range []string{
			"IP Virtual Server version 1.2.1 (size=4096)",
			fmt.Sprintf("TCP  %v:80 rr", topo.VIP),
			fmt.Sprintf("UDP  %v:53 rr", topo.VIP),
			fmt.Sprintf("  -> %v:80", topo.RSIPs[0]),
			"Masq",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("uvsadm -L -n lacks %q:\n%s", want, out)
			}
		}
	})
}
