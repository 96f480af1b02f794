package bench

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// buildUVSD builds uvsd and uvsadm into a temporary folder, or returns
// "" when the tree does not build (the uvs peer is then left out; under
// CI=true the test fails instead).
func buildUVSD(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", dir+"/", "../cmd/uvsd", "../cmd/uvsadm").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("building uvsd failed: %v\n%s", err, out)
		}
		t.Logf("uvs peer left out: building uvsd failed: %v\n%s", err, out)
		return ""
	}
	return dir
}

// TestPrivilegedBenchQuick runs the whole harness briefly (one run of one
// second per load) for the kernel and nft peers, and uvs on both its
// backends when uvsd builds, and checks that every figure it should produce is there and
// non-zero.
func TestPrivilegedBenchQuick(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommands(t, "wrk", "iperf3", "nft", "nginx")
	peers := []string{PeerKernel, PeerNFT}
	bin := buildUVSD(t)
	if bin != "" {
		peers = append(peers, PeerUVS, PeerUVSXDP)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Second)
	defer cancel()
	var log strings.Builder
	rep, err := Run(ctx, Config{Bin: bin, Runs: 1, Duration: time.Second, Peers: peers, Log: &log})
	t.Logf("progress:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", rep.Text())
	want := []string{"ka.rps", "ka.p50", "ka.p99", "close.rps", "close.p50", "close.p99", "iperf3.gbps", "udp.rx", "udp.tx", "sink.rx", "sink.tx"}
	for _, p := range peers {
		keys := want
		if p == PeerUVS || p == PeerUVSXDP {
			keys = append(keys[:len(keys):len(keys)], "ka.cpu", "close.cpu", "iperf3.cpu", "udp.cpu", "sink.cpu", "rss")
		}
		c := rep.Column(p)
		for _, k := range keys {
			s, ok := Summarize(c.Samples[k])
			if !ok || !(s.Median > 0) {
				t.Errorf("%s: %s = %v, want a positive figure", p, k, c.Samples[k])
			}
		}
	}
	for _, n := range rep.Notes {
		if !strings.HasSuffix(n, splitWrkNote) && !strings.HasPrefix(n, "1-min load average") && n != freshLabNote {
			t.Errorf("note %q, want none but the split-wrk remark", n)
		}
	}
}
