package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// finishVS fills in what a virtual_server block left out: defaults, and
// what real servers and checkers inherit (virtual server → real server →
// checker, as keepalived does).
func (p *parser) finishVS(vs *VirtualServer, protoSet bool, left []rsLeftOut) {
	if vs.LBAlgo == "" {
		vs.LBAlgo = "wlc"
	}
	if vs.LBKind == "" {
		vs.LBKind = "NAT"
	}
	byAddr := vs.FWMark == 0 && vs.Group == ""
	switch {
	case !protoSet:
		vs.Protocol = "TCP"
		if byAddr {
			p.warn(vs.Pos, "virtual_server %s: no protocol, TCP assumed (keepalived assumes UDP)", vsName(vs))
		}
	case vs.FWMark != 0:
		p.warn(vs.Pos, "virtual_server %s: protocol is ignored for a fwmark service", vsName(vs))
	}
	if byAddr && vs.Port == 0 && vs.PersistenceTimeout == 0 {
		p.warn(vs.Pos, "virtual_server %s: port 0 is only valid for persistent services, persistence_timeout 360 set", vsName(vs))
		vs.PersistenceTimeout = 360
	}
	if vs.HASuspend && vs.FWMark != 0 {
		p.warn(vs.Pos, "virtual_server %s: ha_suspend cannot be used with fwmarks, cleared", vsName(vs))
		vs.HASuspend = false
	}
	vs.SchedFlags = slices.DeleteFunc(vs.SchedFlags, func(f string) bool {
		var drop bool
		switch f {
		case "ops":
			drop = byAddr && vs.Protocol != "UDP"
		case "sh-port", "sh-fallback":
			drop = vs.LBAlgo != "sh"
		case "mh-port", "mh-fallback":
			drop = vs.LBAlgo != "mh"
		}
		if drop {
			p.warn(vs.Pos, "virtual_server %s: %s does not apply to %s %s, ignored", vsName(vs), f, vs.Protocol, vs.LBAlgo)
		}
		return drop
	})
	if ss := vs.SorryServer; ss != nil && ss.LBKind == "" {
		ss.LBKind, ss.Tunnel = vs.LBKind, vs.Tunnel
	}
	for i := range vs.RealServers {
		rs, lo := &vs.RealServers[i], left[i]
		if lo.weight {
			rs.Weight = vs.Weight
		}
		if lo.lbKind {
			rs.LBKind, rs.Tunnel = vs.LBKind, vs.Tunnel
		}
		if lo.inhibit {
			rs.InhibitOnFailure = vs.InhibitOnFailure
		}
		if lo.alpha {
			rs.Alpha = vs.Alpha
		}
		if rs.Retry == unsetInt {
			rs.Retry = vs.Retry
		}
		if rs.ConnectTimeout == unsetDuration {
			rs.ConnectTimeout = vs.ConnectTimeout
		}
		if rs.DelayLoop == unsetDuration {
			rs.DelayLoop = vs.DelayLoop
		}
		if rs.Warmup == unsetDuration {
			rs.Warmup = vs.Warmup
		}
		if rs.DelayBeforeRetry == unsetDuration {
			rs.DelayBeforeRetry = vs.DelayBeforeRetry
		}
		if rs.Virtualhost == "" {
			rs.Virtualhost = vs.Virtualhost
		}
		for j := range rs.Checkers {
			finishChecker(&rs.Checkers[j], rs, lo.checkerAlpha[j])
		}
	}
}

// finishChecker resolves a checker's timings from its real server and
// keepalived's defaults for its kind.
func finishChecker(c *Checker, rs *RealServer, alpha tri) {
	c.Alpha = alpha.or(rs.Alpha)
	if c.Retry == unsetInt {
		switch {
		case rs.Retry != unsetInt:
			c.Retry = rs.Retry
		case c.Kind == "MISC_CHECK":
			c.Retry = 0
		default:
			c.Retry = 1
		}
	}
	if c.ConnectTimeout == unsetDuration {
		c.ConnectTimeout = rs.ConnectTimeout
	}
	if c.DelayLoop == unsetDuration {
		c.DelayLoop = rs.DelayLoop
	}
	if c.Warmup == unsetDuration {
		c.Warmup = rs.Warmup
		if c.Warmup == unsetDuration {
			c.Warmup = c.DelayLoop
		}
	}
	if c.DelayBeforeRetry == unsetDuration {
		switch {
		case rs.DelayBeforeRetry != unsetDuration:
			c.DelayBeforeRetry = rs.DelayBeforeRetry
		case c.Kind == "HTTP_GET" || c.Kind == "SSL_GET":
			c.DelayBeforeRetry = 3 * time.Second
		default:
			c.DelayBeforeRetry = time.Second
		}
	}
	if c.Virtualhost == "" {
		c.Virtualhost = rs.Virtualhost
	}
	for i := range c.URLs {
		if c.URLs[i].Virtualhost == "" {
			c.URLs[i].Virtualhost = c.Virtualhost
		}
	}
	if !c.ConnectIP.IsValid() {
		c.ConnectIP = rs.Addr
	}
}

// vsName names a virtual server as keepalived's messages do.
func vsName(vs *VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark %d", vs.FWMark)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return netip.AddrPortFrom(vs.Addr, vs.Port).String()
}

func rsName(rs *RealServer) string { return netip.AddrPortFrom(rs.Addr, rs.Port).String() }

// validate checks what spans blocks: groups, ports, duplicates, VRRP
// references. It runs once the whole input is read.
func (p *parser) validate() {
	c := p.cfg
	for i := range c.VirtualServers {
		p.validateVS(&c.VirtualServers[i])
	}
	if p.err != nil {
		return
	}
	// keepalived drops a virtual server without real servers.
	c.VirtualServers = slices.DeleteFunc(c.VirtualServers, func(vs VirtualServer) bool {
		if len(vs.RealServers) == 0 {
			p.warn(vs.Pos, "virtual_server %s has no real servers, ignored", vsName(&vs))
			return true
		}
		return false
	})
	seen := map[string]Pos{}
	fwmark := false
	for _, e := range c.ExpandedServices() {
		k := e.String()
		if prev, dup := seen[k]; dup {
			p.fail(e.VS.Pos, "virtual_server %s: duplicate of the virtual server at %s", k, prev)
			return
		}
		seen[k] = e.VS.Pos
		fwmark = fwmark || e.FWMark != 0
	}
	if fwmark {
		for _, vi := range c.VRRPInstances {
			if vi.UseVMAC {
				p.warn(vi.Pos, "vrrp_instance %s: use_vmac: the kernel drops frames to a virtual MAC before netfilter marks them, so fwmark services get none of this instance's traffic", vi.Name)
			}
		}
	}
	p.validateVRRP()
}

func (p *parser) validateVS(vs *VirtualServer) {
	if vs.LAddrGroup != "" {
		if _, ok := p.cfg.LocalAddressGroups[vs.LAddrGroup]; !ok {
			p.fail(vs.Pos, "laddr_group_name %s: no local_address_group %s", vs.LAddrGroup, vs.LAddrGroup)
			return
		}
	}
	var g VirtualServerGroup
	if vs.Group != "" {
		var ok bool
		if g, ok = p.cfg.VirtualServerGroups[vs.Group]; !ok {
			p.fail(vs.Pos, "virtual_server group %s: no virtual_server_group %s", vs.Group, vs.Group)
			return
		}
		for _, e := range g.Entries {
			if e.FWMark != 0 && vs.HASuspend {
				p.warn(vs.Pos, "virtual_server group %s: ha_suspend cannot be used with fwmarks, cleared", vs.Group)
				vs.HASuspend = false
			}
			if e.FWMark == 0 && e.Port == 0 && vs.PersistenceTimeout == 0 {
				p.warn(vs.Pos, "virtual_server group %s: port 0 is only valid for persistent services, persistence_timeout 360 set", vs.Group)
				vs.PersistenceTimeout = 360
			}
		}
	}
	for i := range vs.RealServers {
		if p.rsPort(vs, g, &vs.RealServers[i]); p.err != nil {
			return
		}
	}
	// Duplicate real servers (once ports are resolved): keepalived keeps
	// the first.
	var keep []RealServer
	for _, rs := range vs.RealServers {
		dup := slices.ContainsFunc(keep, func(k RealServer) bool { return k.Addr == rs.Addr && k.Port == rs.Port })
		if dup {
			p.warn(rs.Pos, "virtual_server %s: real_server %s is duplicated, ignored", vsName(vs), rsName(&rs))
			continue
		}
		keep = append(keep, rs)
	}
	vs.RealServers = keep

	weights := uint64(0)
	for i := range vs.RealServers {
		rs := &vs.RealServers[i]
		weights += uint64(rs.Weight)
		if vs.Addr.IsValid() && rs.LBKind != "TUN" && rs.Addr.Is4() != vs.Addr.Is4() {
			p.fail(rs.Pos, "real_server %s: address family differs from virtual_server %s (only TUN may mix)", rs.Addr, vsName(vs))
			return
		}
		for j := range rs.Checkers {
			ch := &rs.Checkers[j]
			if ch.ConnectPort == 0 {
				ch.ConnectPort = rs.Port
			}
			if ch.ConnectPort == 0 && ch.Kind != "MISC_CHECK" {
				p.fail(ch.Pos, "%s: real_server %s has no port, set connect_port", ch.Kind, rs.Addr)
				return
			}
		}
	}
	if ss := vs.SorryServer; ss != nil && byAddr(vs) {
		if ss.Port == 0 {
			ss.Port = vs.Port
		} else if ss.LBKind != "NAT" && ss.LBKind != "FNAT" && ss.Port != vs.Port {
			p.fail(ss.Pos, "sorry_server %s: port mapping is impossible in %s (virtual_server port is %d)", netip.AddrPortFrom(ss.Addr, ss.Port), ss.LBKind, vs.Port)
			return
		}
	}
	if len(vs.RealServers) > 0 && uint64(vs.Quorum) > weights {
		p.warn(vs.Pos, "virtual_server %s: quorum %d exceeds the total weight %d of its real servers, reduced", vsName(vs), vs.Quorum, weights)
		vs.Quorum = uint32(weights)
	}
	if vs.Quorum > 0 && vs.Hysteresis >= vs.Quorum {
		p.warn(vs.Pos, "virtual_server %s: hysteresis %d >= quorum %d, set to %d", vsName(vs), vs.Hysteresis, vs.Quorum, vs.Quorum-1)
		vs.Hysteresis = vs.Quorum - 1
	}
}

func byAddr(vs *VirtualServer) bool { return vs.FWMark == 0 && vs.Group == "" }

// rsPort resolves a real server's port as keepalived does, except that a
// port differing from the virtual port is an error where the forwarding
// method cannot change ports (keepalived resets it with a warning).
func (p *parser) rsPort(vs *VirtualServer, g VirtualServerGroup, rs *RealServer) {
	mapping := rs.LBKind == "NAT" || rs.LBKind == "FNAT"
	switch {
	case vs.FWMark != 0:
		if !mapping && rs.Port != 0 {
			p.warn(rs.Pos, "real_server %s: port is ignored for a fwmark service in %s, cleared", rsName(rs), rs.LBKind)
			rs.Port = 0
		}
	case vs.Group != "":
		if mapping || rs.Port == 0 {
			return
		}
		for _, e := range g.Entries {
			if e.FWMark == 0 && e.Port != 0 && e.Port != rs.Port {
				p.fail(rs.Pos, "real_server %s: port mapping is impossible in %s (virtual_server_group %s has port %d at %s)", rsName(rs), rs.LBKind, g.Name, e.Port, e.Pos)
				return
			}
		}
	default:
		if rs.Port == 0 {
			rs.Port = vs.Port
		} else if !mapping && rs.Port != vs.Port {
			p.fail(rs.Pos, "real_server %s: port mapping is impossible in %s (virtual_server port is %d)", rsName(rs), rs.LBKind, vs.Port)
		}
	}
}

func (p *parser) validateVRRP() {
	c := p.cfg
	g := &c.Global
	byName := map[string]*VRRPInstance{}
	scripts := map[string]bool{}
	for _, s := range c.VRRPScripts {
		if scripts[s.Name] {
			p.fail(s.Pos, "vrrp_script %s: already defined", s.Name)
			return
		}
		scripts[s.Name] = true
	}
	type vridKey struct {
		ifname string
		v6     bool
		vrid   uint8
	}
	vrids := map[vridKey]*VRRPInstance{}
	for i := range c.VRRPInstances {
		vi := &c.VRRPInstances[i]
		if prev, dup := byName[vi.Name]; dup {
			p.fail(vi.Pos, "vrrp_instance %s: already defined at %s", vi.Name, prev.Pos)
			return
		}
		byName[vi.Name] = vi
		v6 := false
		for j, a := range vi.VirtualIPs {
			if j == 0 {
				v6 = a.Prefix.Addr().Is6()
			} else if a.Prefix.Addr().Is6() != v6 {
				p.fail(a.Pos, "vrrp_instance %s: virtual_ipaddress mixes IPv4 and IPv6 (use virtual_ipaddress_excluded)", vi.Name)
				return
			}
		}
		if vi.Version == 0 {
			vi.Version = g.VRRPVersion
		}
		if v6 && vi.Version == 2 {
			vi.Version = 3 // keepalived runs IPv6 instances with VRRPv3
		}
		switch {
		case vi.Version == 2 && vi.AdvertInt%time.Second != 0:
			r := (vi.AdvertInt + time.Second/2).Truncate(time.Second)
			r = max(r, time.Second)
			p.warn(vi.Pos, "vrrp_instance %s: advert_int %v is not whole seconds, VRRPv2 uses %v", vi.Name, vi.AdvertInt, r)
			vi.AdvertInt = r
		case vi.Version == 2 && vi.AdvertInt > 255*time.Second:
			p.fail(vi.Pos, "vrrp_instance %s: advert_int %v above VRRPv2's 255s", vi.Name, vi.AdvertInt)
			return
		case vi.Version == 3 && (vi.AdvertInt < 10*time.Millisecond || vi.AdvertInt > 40950*time.Millisecond):
			p.fail(vi.Pos, "vrrp_instance %s: advert_int %v outside VRRPv3's 0.01s-40.95s", vi.Name, vi.AdvertInt)
			return
		}
		if vi.Interface == "" && len(vi.UnicastPeers) == 0 {
			p.fail(vi.Pos, "vrrp_instance %s: missing interface", vi.Name)
			return
		}
		if len(vi.UnicastPeers) == 0 {
			k := vridKey{vi.Interface, v6, vi.VirtualRouterID}
			if prev, dup := vrids[k]; dup {
				p.fail(vi.Pos, "vrrp_instance %s: virtual_router_id %d already used on %s by %s at %s", vi.Name, vi.VirtualRouterID, vi.Interface, prev.Name, prev.Pos)
				return
			}
			vrids[k] = vi
		}
		if vi.GarpMasterDelay == unsetDuration {
			vi.GarpMasterDelay = g.VRRPGarpMasterDelay
		}
		if vi.GarpMasterRepeat == unsetInt {
			vi.GarpMasterRepeat = g.VRRPGarpMasterRepeat
		}
		if vi.GarpMasterRefresh == unsetDuration {
			vi.GarpMasterRefresh = g.VRRPGarpMasterRefresh
		}
		if vi.GarpMasterRefreshRepeat == unsetInt {
			vi.GarpMasterRefreshRepeat = g.VRRPGarpMasterRefreshRepeat
		}
		if vi.GarpLowerPrioDelay == unsetDuration {
			vi.GarpLowerPrioDelay = g.VRRPGarpLowerPrioDelay
		}
		if vi.GarpLowerPrioRepeat == unsetInt {
			vi.GarpLowerPrioRepeat = g.VRRPGarpLowerPrioRepeat
		}
		if len(vi.VirtualIPs) == 0 {
			p.warn(vi.Pos, "vrrp_instance %s has no virtual_ipaddress", vi.Name)
		}
		vi.TrackScripts = p.knownScripts(vi.TrackScripts, scripts)
	}
	inGroup := map[string]string{}
	for i := range c.VRRPSyncGroups {
		sg := &c.VRRPSyncGroups[i]
		sg.Group = slices.DeleteFunc(sg.Group, func(name string) bool {
			if byName[name] == nil {
				p.warn(sg.Pos, "vrrp_sync_group %s: vrrp_instance %s does not exist, ignored", sg.Name, name)
				return true
			}
			return false
		})
		for _, name := range sg.Group {
			if other, ok := inGroup[name]; ok {
				p.fail(sg.Pos, "vrrp_sync_group %s: vrrp_instance %s is already in vrrp_sync_group %s", sg.Name, name, other)
				return
			}
			inGroup[name] = sg.Name
		}
		sg.TrackScripts = p.knownScripts(sg.TrackScripts, scripts)
	}
	if d := g.LVSSyncDaemon; d != nil && d.Instance != "" {
		vi := byName[d.Instance]
		switch {
		case vi == nil:
			p.warn(d.Pos, "lvs_sync_daemon: vrrp_instance %s does not exist, sync daemon runs master and backup", d.Instance)
			d.Instance = ""
		case !p.syncIDSet:
			d.SyncID = vi.VirtualRouterID
		}
	}
}

// knownScripts drops track_script entries naming no vrrp_script, as
// keepalived does, with a warning.
func (p *parser) knownScripts(ts []Track, scripts map[string]bool) []Track {
	return slices.DeleteFunc(ts, func(t Track) bool {
		if !scripts[t.Name] {
			p.warn(t.Pos, "track_script: vrrp_script %s does not exist, ignored", t.Name)
			return true
		}
		return false
	})
}
