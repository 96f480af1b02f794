package e2e

import (
	"context"
	"fmt"
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
			query := func() (string, error) {
				return rs.Run(ctx, "sh", "-c", "ip -4 -o addr show dev lo; ip -o link show; sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce")
			}
			state := func() string {
				out, err := query()
				if err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				return out
			}
			// set up: the VIP on lo, arp_ignore=1 and arp_announce=2, and
			// in tun mode the TUN device (uvsrs creates it last).
			setUp := func(s string) bool {
				return strings.Contains(s, "198.18.0.100") && strings.HasSuffix(strings.TrimSpace(s), "1\n2") &&
					(mode != "tun" || strings.Contains(s, "uvstun0"))
			}
			before := state()
			if setUp(before) {
				t.Fatalf("set up before uvsrs ran:\n%s", before)
			}
			p, err := rs.Start(filepath.Join(bin, "uvsrs"), "--vip", "198.18.0.100", "--mode", mode)
			if err != nil {
				t.Fatal(err)
			}
			if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
				out, err := query()
				if err != nil {
					return fmt.Errorf("%w: %s", err, out)
				}
				if !setUp(out) {
					return fmt.Errorf("not set up:\n%s", out)
				}
				return nil
			}); err != nil {
				t.Fatalf("uvsrs never set the real server up: %v\n%s", err, p.Output())
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
