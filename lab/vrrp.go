package lab

import (
	"fmt"
	"net/netip"
)

// The VRRP lab's addresses: those of the NAT lab, with the directors at
// 198.18.0.(2+i) and 198.19.0.(2+i), and both the VIP and the real
// servers' gateway floating between them.
var (
	vrrpVIP     = natVIP          // VI_VIP's address
	vrrpGateway = FloatingGateway // VI_GW's address
)

// maxDirectors keeps the directors' addresses .2, .3, .4 below the real
// servers' .11 and up.
const maxDirectors = 3

// Device, bridge and VRRP names inside the VRRP lab.
const (
	VRRPClientDev    = NATClientDev    // client, towards the client bridge
	VRRPDirClientDev = NATDirClientDev // every director, client side (VI_VIP's interface)
	VRRPDirServerDev = NATDirServerDev // every director, server side (VI_GW's interface)
	VRRPRSDev        = NATRSDev        // every real server
	VRRPClientBridge = "brc"           // in Switch: the client and every director's d0
	VRRPServerBridge = "brs"           // in Switch: every director's d1 and every real server

	// VRRPInstanceVIP owns the VIP on d0, VRRPInstanceGW the real
	// servers' gateway on d1; VRRPSyncGroup holds both.
	VRRPInstanceVIP = "VI_VIP"
	VRRPInstanceGW  = "VI_GW"
	VRRPSyncGroup   = "VG"
	VRRPRouterIDVIP = 51 // VI_VIP's virtual_router_id
	VRRPRouterIDGW  = 52 // VI_GW's virtual_router_id

	// VRRPHTTPPort and VRRPUDPPort are the standard services' ports, the
	// same on the VIP and on the real servers: nginx, and a UDP echo.
	VRRPHTTPPort = 80
	VRRPUDPPort  = 5353

	vrrpSwitchClient = "sc" // Switch's port towards the client
)

// VRRPOptions shape VRRPTopology. The zero value is the standard lab.
type VRRPOptions struct {
	// Directors is the number of directors, 1..3; 0 means 2.
	Directors int
	// RealServers is the number of real servers; 0 means 2.
	RealServers int
}

// VRRPLab is the two-armed LVS-NAT lab with several directors sharing the
// VIP and the real servers' gateway by VRRP, as in the LVS docs'
// keepalived two-director NAT example:
//
//	                     switch sw
//	client c0 198.18.0.1/24 ──── sc ─┐
//	dirA   d0 198.18.0.2/24 ──── sa0 ─┤ brc   VIP 198.18.0.100 (VI_VIP)
//	dirB   d0 198.18.0.3/24 ──── sb0 ─┘
//	dirA   d1 198.19.0.2/24 ──── sa1 ─┐
//	dirB   d1 198.19.0.3/24 ──── sb1 ─┤ brs   gateway 198.19.0.254 (VI_GW)
//	rs1  eth0 198.19.0.11/24 ─── s1 ──┤
//	rs2  eth0 198.19.0.12/24 ─── s2 ──┘
//
// The lab puts the VIP 198.18.0.100 (VI_VIP) and the gateway 198.19.0.254
// (VI_GW) on no interface: the MASTER director's VRRP owns them (keepalived
// adds them to its d0 and d1; uvs answers ARP for them). The client has
// only its on-link route; the real servers route by default via
// GatewayIP. No director forwards (ip_forward=0, rp_filter=0). A third
// director, dirC, has .4 on both sides.
type VRRPLab struct {
	Client, Switch *NS
	Directors      []*NS // dirA, dirB, dirC
	RS             []*NS // rs1, rs2, ...

	ClientIP, VIP, GatewayIP   netip.Addr
	DirClientIPs, DirServerIPs []netip.Addr // Directors[i]'s d0 and d1
	RSIPs                      []netip.Addr

	// Nginx are the real servers' nginx, once StartServers ran.
	Nginx []*Nginx
}

// dirName is director i's short name and router_id: dirA, dirB, dirC.
func dirName(i int) string { return "dir" + string(rune('A'+i)) }

// newVRRPLab checks opts and fills in the lab's addresses, no namespaces.
func newVRRPLab(opts VRRPOptions) (*VRRPLab, error) {
	if opts.Directors == 0 {
		opts.Directors = 2
	}
	if opts.RealServers == 0 {
		opts.RealServers = 2
	}
	if opts.Directors < 0 || opts.Directors > maxDirectors {
		return nil, fmt.Errorf("vrrp topology: %d directors, want 1..%d", opts.Directors, maxDirectors)
	}
	if opts.RealServers < 0 || opts.RealServers > maxRealServers {
		return nil, fmt.Errorf("vrrp topology: %d real servers, want 1..%d", opts.RealServers, maxRealServers)
	}
	t := &VRRPLab{ClientIP: natClientIP, VIP: vrrpVIP, GatewayIP: vrrpGateway}
	for i := range opts.Directors {
		t.DirClientIPs = append(t.DirClientIPs, netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}))
		t.DirServerIPs = append(t.DirServerIPs, netip.AddrFrom4([4]byte{198, 19, 0, byte(2 + i)}))
	}
	for k := 1; k <= opts.RealServers; k++ {
		t.RSIPs = append(t.RSIPs, netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + k)}))
	}
	return t, nil
}

// VRRPTopology builds the VRRP lab in l. On error the namespaces built so
// far stay in l, and Lab.Close removes them.
func VRRPTopology(l *Lab, opts VRRPOptions) (*VRRPLab, error) {
	t, err := newVRRPLab(opts)
	if err != nil {
		return nil, err
	}
	if err := t.build(l); err != nil {
		return nil, fmt.Errorf("vrrp topology: %w", err)
	}
	return t, nil
}

func (t *VRRPLab) build(l *Lab) error {
	var err error
	if t.Client, err = l.NS("client"); err != nil {
		return err
	}
	if t.Switch, err = l.NS("sw"); err != nil {
		return err
	}
	cidr := func(a netip.Addr, p netip.Prefix) string { return netip.PrefixFrom(a, p.Bits()).String() }
	if err := l.Veth(t.Client, VRRPClientDev, t.Switch, vrrpSwitchClient); err != nil {
		return err
	}
	if err := t.Client.Addr(VRRPClientDev, cidr(t.ClientIP, natClientNet)); err != nil {
		return err
	}
	cports := []string{vrrpSwitchClient}
	var sports []string
	for i := range t.DirClientIPs {
		d, err := l.NS(dirName(i))
		if err != nil {
			return err
		}
		t.Directors = append(t.Directors, d)
		// Switch ports sa0/sa1 for dirA, sb0/sb1 for dirB, ...
		sw0 := fmt.Sprintf("s%c0", 'a'+i)
		sw1 := fmt.Sprintf("s%c1", 'a'+i)
		steps := []func() error{
			func() error { return l.Veth(d, VRRPDirClientDev, t.Switch, sw0) },
			func() error { return d.Addr(VRRPDirClientDev, cidr(t.DirClientIPs[i], natClientNet)) },
			func() error { return l.Veth(d, VRRPDirServerDev, t.Switch, sw1) },
			func() error { return d.Addr(VRRPDirServerDev, cidr(t.DirServerIPs[i], natServerNet)) },
			// As in the NAT lab: the kernel must neither forward VIP
			// traffic itself nor drop what uvs sees by reverse-path
			// checks.
			func() error { return d.Sysctl("net.ipv4.ip_forward", "0") },
			func() error { return d.Sysctl("net.ipv4.conf.all.rp_filter", "0") },
			func() error { return d.Sysctl("net.ipv4.conf.default.rp_filter", "0") },
			func() error { return d.Sysctl("net.ipv4.conf."+VRRPDirClientDev+".rp_filter", "0") },
			func() error { return d.Sysctl("net.ipv4.conf."+VRRPDirServerDev+".rp_filter", "0") },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		cports = append(cports, sw0)
		sports = append(sports, sw1)
	}
	for k, ip := range t.RSIPs {
		rs, err := l.NS(fmt.Sprintf("rs%d", k+1))
		if err != nil {
			return err
		}
		t.RS = append(t.RS, rs)
		sw := fmt.Sprintf("s%d", k+1)
		if err := l.Veth(rs, VRRPRSDev, t.Switch, sw); err != nil {
			return err
		}
		if err := rs.Addr(VRRPRSDev, cidr(ip, natServerNet)); err != nil {
			return err
		}
		if err := rs.Route("default", "via", t.GatewayIP.String(), "dev", VRRPRSDev); err != nil {
			return err
		}
		sports = append(sports, sw)
	}
	if err := t.Switch.Bridge(VRRPClientBridge, cports...); err != nil {
		return err
	}
	return t.Switch.Bridge(VRRPServerBridge, sports...)
}

// StartServers starts the real servers' services: nginx (StartNginx, in
// the lab folder "<rs namespace>", answering "rsK") on port 80, kept in
// t.Nginx, and a UDP echo (StartUDPEcho) on port 5353. Lab.Close stops
// them.
func (t *VRRPLab) StartServers(l *Lab) error {
	for k, rs := range t.RS {
		ng, err := rs.StartNginx(l.Dir(rs.Name()), fmt.Sprintf("rs%d", k+1))
		if err != nil {
			return err
		}
		t.Nginx = append(t.Nginx, ng)
		if _, err := rs.StartUDPEcho(VRRPUDPPort); err != nil {
			return err
		}
	}
	return nil
}
