package lab

import (
	"fmt"
	"net/netip"
)

// The NAT lab's addresses, all in the RFC 2544 benchmarking range
// 198.18.0.0/15: 198.18.0.0/24 is the client segment, 198.19.0.0/24 the
// server segment.
var (
	natClientNet = netip.MustParsePrefix("198.18.0.0/24")
	natServerNet = netip.MustParsePrefix("198.19.0.0/24")
	natClientIP  = netip.MustParseAddr("198.18.0.1")
	natDirCIP    = netip.MustParseAddr("198.18.0.2")
	natVIP       = netip.MustParseAddr("198.18.0.100")
	natDirSIP    = netip.MustParseAddr("198.19.0.1")
)

// FloatingGateway is the alternative NAT gateway for the real servers: an
// address on no kernel interface, owned (ARP and all) by uvs.
var FloatingGateway = netip.MustParseAddr("198.19.0.254")

// maxRealServers keeps rsK's address 198.19.0.(10+K) below the floating
// gateway.
const maxRealServers = 200

// NATOptions shape NATTopology. The zero value is the standard lab.
type NATOptions struct {
	// RealServers is the number of real servers; 0 means 2.
	RealServers int
	// Gateway is the real servers' default gateway, in 198.19.0.0/24;
	// zero means the director's kernel address 198.19.0.1. FloatingGateway
	// is the other choice.
	Gateway netip.Addr
	// Offloads, when set, are `ethtool -K` features applied to every veth
	// end of the lab, e.g. {"tso", "off", "gso", "off", "gro", "off"}.
	// Nil keeps the kernel's defaults (no ethtool run at all).
	Offloads []string
	// Queues, when above 1, gives the director's two veths (and their
	// peers) that many transmit and receive queues, as a multi-queue
	// NIC has: uvsd's workers each take one for AF_XDP transmit.
	Queues int
}

// NAT is the two-armed LVS-NAT lab:
//
//	client c0 198.18.0.1/24 ── d0 198.18.0.2/24 director d1 198.19.0.1/24 ── sd1 ┐
//	                        (VIP 198.18.0.100: on no interface)        sw: br0 ├─ s1 ── eth0 198.19.0.11/24 rs1
//	                                                                            └─ s2 ── eth0 198.19.0.12/24 rs2
//
// The client has only its on-link route, so it reaches the VIP by ARP,
// which uvs answers. The director does not forward (ip_forward=0,
// rp_filter=0). Real servers route by default via GatewayIP.
type NAT struct {
	Client, Director, Switch *NS
	RS                       []*NS

	ClientIP, DirClientIP, DirServerIP, VIP, GatewayIP netip.Addr
	RSIPs                                              []netip.Addr
}

// Device names inside the NAT lab's namespaces.
const (
	NATClientDev      = "c0"   // client, towards the director
	NATDirClientDev   = "d0"   // director, client side
	NATDirServerDev   = "d1"   // director, server side
	NATRSDev          = "eth0" // every real server
	NATBridge         = "br0"  // in Switch
	natSwitchDirector = "sd1"  // Switch's port towards the director
)

// NATTopology builds the NAT lab in l. On error the namespaces built so
// far stay in l, and Lab.Close removes them.
func NATTopology(l *Lab, opts NATOptions) (*NAT, error) {
	if opts.RealServers == 0 {
		opts.RealServers = 2
	}
	if opts.RealServers < 0 || opts.RealServers > maxRealServers {
		return nil, fmt.Errorf("nat topology: %d real servers, want 1..%d", opts.RealServers, maxRealServers)
	}
	t := &NAT{
		ClientIP:    natClientIP,
		DirClientIP: natDirCIP,
		DirServerIP: natDirSIP,
		VIP:         natVIP,
		GatewayIP:   opts.Gateway,
	}
	if !t.GatewayIP.IsValid() {
		t.GatewayIP = t.DirServerIP
	}
	if !natServerNet.Contains(t.GatewayIP) {
		return nil, fmt.Errorf("nat topology: gateway %v outside %v", t.GatewayIP, natServerNet)
	}
	if err := t.build(l, opts); err != nil {
		return nil, fmt.Errorf("nat topology: %w", err)
	}
	return t, nil
}

func (t *NAT) build(l *Lab, opts NATOptions) error {
	var err error
	if t.Client, err = l.NS("client"); err != nil {
		return err
	}
	if t.Director, err = l.NS("director"); err != nil {
		return err
	}
	if t.Switch, err = l.NS("sw"); err != nil {
		return err
	}
	cidr := func(a netip.Addr, p netip.Prefix) string { return netip.PrefixFrom(a, p.Bits()).String() }
	steps := []func() error{
		func() error { return l.VethQueues(t.Client, NATClientDev, t.Director, NATDirClientDev, opts.Queues) },
		func() error { return t.Client.Addr(NATClientDev, cidr(t.ClientIP, natClientNet)) },
		func() error { return t.Director.Addr(NATDirClientDev, cidr(t.DirClientIP, natClientNet)) },
		func() error {
			return l.VethQueues(t.Director, NATDirServerDev, t.Switch, natSwitchDirector, opts.Queues)
		},
		func() error { return t.Director.Addr(NATDirServerDev, cidr(t.DirServerIP, natServerNet)) },
		// The kernel must neither forward VIP traffic itself nor drop
		// what uvs sees by reverse-path checks.
		func() error { return t.Director.Sysctl("net.ipv4.ip_forward", "0") },
		func() error { return t.Director.Sysctl("net.ipv4.conf.all.rp_filter", "0") },
		func() error { return t.Director.Sysctl("net.ipv4.conf.default.rp_filter", "0") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	ports := []string{natSwitchDirector}
	for i := 1; i <= opts.RealServers; i++ {
		rs, err := l.NS(fmt.Sprintf("rs%d", i))
		if err != nil {
			return err
		}
		ip := netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + i)})
		sw := fmt.Sprintf("s%d", i)
		if err := l.Veth(rs, NATRSDev, t.Switch, sw); err != nil {
			return err
		}
		if err := rs.Addr(NATRSDev, cidr(ip, natServerNet)); err != nil {
			return err
		}
		if err := rs.Route("default", "via", t.GatewayIP.String(), "dev", NATRSDev); err != nil {
			return err
		}
		t.RS = append(t.RS, rs)
		t.RSIPs = append(t.RSIPs, ip)
		ports = append(ports, sw)
	}
	if err := t.Switch.Bridge(NATBridge, ports...); err != nil {
		return err
	}
	if opts.Offloads != nil {
		ends := []struct {
			ns   *NS
			devs []string
		}{
			{t.Client, []string{NATClientDev}},
			{t.Director, []string{NATDirClientDev, NATDirServerDev}},
			{t.Switch, ports},
		}
		for _, rs := range t.RS {
			ends = append(ends, struct {
				ns   *NS
				devs []string
			}{rs, []string{NATRSDev}})
		}
		for _, e := range ends {
			for _, d := range e.devs {
				if err := e.ns.Ethtool(d, opts.Offloads...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
