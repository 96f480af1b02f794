package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedReload: `uvsd reload` applies only the difference and
// keeps established connections to the servers that stay (a download
// running across a reload that removes the other server and changes the
// scheduler completes intact); a broken config changes nothing and says
// why.
func TestPrivilegedReload(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	d := startUVSD(t, n.l, n.topo.Director, n.conf(""), "--workers", "1")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dl := n.topo.Client.Exec(ctx, "curl", "-sS", "--fail", "--limit-rate", "3M", "http://"+n.topo.VIP.String()+"/big")
	out, err := dl.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Start(); err != nil {
		t.Fatal(err)
	}
	sum := make(chan string, 1)
	go func() {
		h := sha256.New()
		buf := make([]byte, 1<<16)
		for {
			k, err := out.Read(buf)
			h.Write(buf[:k])
			if err != nil {
				break
			}
		}
		sum <- hex.EncodeToString(h.Sum(nil))
	}()
	// Wait until the download's connection is established, and see
	// which server carries it.
	serving := ""
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		for _, line := range strings.Split(d.mustAdm("-L", "-n", "-c"), "\n") {
			if f := strings.Fields(line); len(f) == 6 && f[2] == "ESTABLISHED" && strings.HasSuffix(f[4], ":80") {
				serving = f[5]
				return nil
			}
		}
		return os.ErrNotExist
	}); err != nil {
		t.Fatal(err)
	}
	// The reload removes the other server: IPVS drops the packets of a
	// removed server's connections (expire_nodest_conn), so "keeps every
	// established connection" is about the servers that stay.
	gone := n.topo.RSIPs[1]
	if serving == gone.String()+":80" {
		gone = n.topo.RSIPs[0]
	}

	// Drop the other server and switch the TCP service to wrr.
	conf := n.conf("")
	conf = strings.Replace(conf, "lb_algo rr\n    lb_kind NAT\n    protocol TCP", "lb_algo wrr\n    lb_kind NAT\n    protocol TCP", 1)
	i := strings.Index(conf, "    real_server "+gone.String()+" 80 {")
	j := i + strings.Index(conf[i:], "}\n") + 2
	conf = conf[:i] + conf[j:]
	if out, err := d.reload(conf); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	select {
	case <-sum:
		t.Fatal("the download ended before the reload: the test proves nothing")
	default:
	}
	listing := d.mustAdm("-L", "-n")
	if !strings.Contains(listing, n.topo.VIP.String()+":80 wrr") || strings.Contains(listing, gone.String()+":80 ") {
		t.Fatalf("after reload:\n%s", listing)
	}
	out2, err := d.reload("virtual_server 198.18.0.100 80 {\n  lb_algo nosuch\n}\n")
	if err == nil || !strings.Contains(out2, "keepalived.conf:2:") {
		t.Fatalf("broken reload: err %v, output %q; want a refusal with file:line", err, out2)
	}
	if after := d.mustAdm("-L", "-n"); after != listing {
		t.Fatalf("a refused reload changed the services:\n%s", after)
	}
	if err := dl.Wait(); err != nil {
		t.Fatalf("download across the reload: %v", err)
	}
	if got := <-sum; got != lab.BigSHA256() {
		t.Fatal("download across the reload: sha256 mismatch")
	}
}
