package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedUvsrsUndo: uvsrs puts the VIP on lo, sets arp_ignore and
// arp_announce (and in tun mode opens its TUN device), and undoes all of
// it when stopped.
func TestPrivilegedUvsrsUndo(t *testing.T) {
	for _, mode := range []string{"dr", "tun"} {
		t.Run(mode, func(t *testing.T) {
			l := lab.NewT(t)
			rs, err := l.NS("rs")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			state := func() string {
				out, err := rs.Run(ctx, "sh", "-c", "ip -4 -o addr show dev lo; ip -o link show; sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce")
				if err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				return out
			}
			before := state()
			p, err := rs.Start(filepath.Join(bin, "uvsrs"), "--vip", "198.18.0.100", "--mode", mode)
			if err != nil {
				t.Fatal(err)
			}
			if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
				_, err := rs.Run(ctx, "sh", "-c", "ip -4 addr show dev lo | grep -q 198.18.0.100")
				return err
			}); err != nil {
				t.Fatalf("the VIP never reached lo: %v\n%s", err, p.Output())
			}
			during := state()
			if !strings.Contains(during, "198.18.0.100") || strings.HasSuffix(strings.TrimSpace(during), "0\n0") {
				t.Fatalf("while running:\n%s", during)
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Done():
			case <-ctx.Done():
				t.Fatal("uvsrs did not stop")
			}
			if after := state(); after != before {
				t.Fatalf("uvsrs left changes behind:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
