package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNewPeer(t *testing.T) {
	for _, name := range DefaultPeers {
		p, err := newPeer(name, 1)
		if err != nil || p.name != name {
			t.Errorf("newPeer(%q) = %v, %v", name, p, err)
		}
	}
	if p, err := newPeer("uvs-w2", 0); err != nil || p.name != "uvs-w2" {
		t.Errorf("newPeer(uvs-w2) = %v, %v", p, err)
	}
	for _, bad := range []string{"lvs", "uvs-w0", "uvs-wx"} {
		if _, err := newPeer(bad, 1); err == nil {
			t.Errorf("newPeer(%q) succeeded", bad)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Duration: 1400 * time.Millisecond}
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	if c.Runs != 3 || c.Duration != time.Second || len(c.Peers) != len(DefaultPeers) ||
		len(c.Loads) != len(DefaultLoads) || len(c.Workers) != 1 || c.Workers[0] != 1 {
		t.Errorf("defaults: %+v", c)
	}
}

// A bad configuration fails before any lab is built (no root needed).
func TestRunRejectsUnknownNames(t *testing.T) {
	for _, c := range []Config{{Loads: []string{"ping"}}, {Peers: []string{"lvs"}}, {Peers: []string{PeerUVS}, Workers: []int{0}}} {
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "unknown") && !strings.Contains(err.Error(), "uvs-w") {
			t.Errorf("Run(%+v) = %v, want a configuration error", c, err)
		}
	}
}
