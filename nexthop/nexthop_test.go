package nexthop

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedResolve: in a namespace pair, Route names the egress
// interface and the gateway, and Resolve finds the neighbour's MAC by ARP
// when the kernel's neighbour table does not know it yet, then from the
// table.
func TestPrivilegedResolve(t *testing.T) {
	l := lab.NewT(t)
	a, err := l.NS("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.NS("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Veth(a, "a0", b, "b0"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{a.Addr("a0", "198.18.5.1/24"), b.Addr("b0", "198.18.5.2/24"),
		a.Route("198.18.9.0/24", "via", "198.18.5.2")} {
		if step != nil {
			t.Fatal(step)
		}
	}
	bMAC, err := b.MAC("b0")
	if err != nil {
		t.Fatal(err)
	}
	var direct, routed Hop
	if err := a.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The link may take a moment to be usable after it came up.
		return lab.Eventually(ctx, 20*time.Millisecond, func() error {
			var err error
			if direct, err = Resolve(netip.MustParseAddr("198.18.5.2"), 500*time.Millisecond); err != nil {
				return err
			}
			routed, err = Resolve(netip.MustParseAddr("198.18.9.7"), 500*time.Millisecond)
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	if direct.IfName != "a0" || !bytes.Equal(direct.MAC, bMAC) || direct.Gateway != netip.MustParseAddr("198.18.5.2") {
		t.Fatalf("on-link: %+v, want a0 and %v", direct, bMAC)
	}
	if direct.Src != netip.MustParseAddr("198.18.5.1") {
		t.Errorf("preferred source %v, want 198.18.5.1", direct.Src)
	}
	if routed.Gateway != netip.MustParseAddr("198.18.5.2") || !bytes.Equal(routed.MAC, bMAC) {
		t.Fatalf("via a gateway: %+v, want the gateway's MAC %v", routed, bMAC)
	}
	// No route: an error, not a guess.
	if err := a.Do(func() error {
		_, err := Resolve(netip.MustParseAddr("203.0.113.1"), 100*time.Millisecond)
		if err == nil {
			t.Error("resolved an address with no route")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
