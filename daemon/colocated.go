package daemon

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/hostlocal"
)

// A director that is also a real server of its own services (the LVS
// docs' "directors as real servers" setup) has the VIPs on its loopback,
// so its kernel would serve every client packet that uvs captures, beside
// the real server uvs picks. The host guard (an nftables netdev ingress
// filter; AF_PACKET sees frames before it) keeps the kernel from packets
// to the VIPs unless a peer director sent them, that is, scheduled them
// to this host already; connections uvs schedules to this host enter the
// host's stack through a TUN device.

type colocated struct {
	inj    *hostlocal.Injector
	guards []*hostlocal.Guard
}

// hasLocalDest reports whether some real server is this host.
func (d *Daemon) hasLocalDest() bool {
	local := localAddrs()
	for _, dd := range d.model.Snapshot().Dests {
		if !dd.Removed && local[dd.Addr] {
			return true
		}
	}
	return false
}

func openColocated(ifaces []dataplane.Iface) (*colocated, error) {
	inj, err := hostlocal.OpenInjector("uvsl%d")
	if err != nil {
		return nil, fmt.Errorf("local real server: %w", err)
	}
	c := &colocated{inj: inj}
	for _, ifc := range ifaces {
		g, err := hostlocal.NewGuard(fmt.Sprintf("uvs_%d_%d", os.Getpid(), ifc.Index), ifc.Name)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("local real server: host guard on %s: %w", ifc.Name, err)
		}
		c.guards = append(c.guards, g)
	}
	return c, nil
}

func (c *colocated) setVIPs(vips [][4]byte) error {
	addrs := make([]netip.Addr, len(vips))
	for i, a := range vips {
		addrs[i] = netip.AddrFrom4(a)
	}
	for _, g := range c.guards {
		if err := g.SetVIPs(addrs); err != nil {
			return err
		}
	}
	return nil
}

func (c *colocated) setPeers(macs [][6]byte) error {
	for _, g := range c.guards {
		if err := g.SetPeers(macs); err != nil {
			return err
		}
	}
	return nil
}

func (c *colocated) close() {
	for _, g := range c.guards {
		g.Close()
	}
	if c.inj != nil {
		c.inj.Close()
	}
}
