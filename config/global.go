package config

import (
	"net/netip"
	"strings"
)

// topUnsupported are top-level blocks of keepalived that uvs does not
// implement.
var topUnsupported = map[string]bool{
	"static_routes": true, "static_rules": true, "linkbeat_interfaces": true,
	"interface_up_down_delays": true, "track_group": true, "vrrp_track_file": true,
	"track_file": true, "vrrp_track_process": true, "garp_group": true,
	"bfd_instance": true, "SSL": true, "net_namespace": true,
	"net_namespace_ipvs": true, "namespace_with_ipsets": true, "instance": true,
	"use_pid_dir": true, "linkbeat_use_polling": true, "child_wait_time": true,
}

func (p *parser) top() {
	for p.err == nil {
		s, ok := p.next()
		if !ok {
			if p.err == nil && s.pos != (Pos{}) {
				p.fail(s.pos, "unbalanced '}'")
			}
			return
		}
		switch kw := s.kw(); kw {
		case "global_defs":
			p.globalDefs(s)
		case "virtual_server":
			p.virtualServer(s)
		case "virtual_server_group":
			p.virtualServerGroup(s)
		case "vrrp_instance":
			p.vrrpInstance(s)
		case "vrrp_sync_group":
			p.vrrpSyncGroup(s)
		case "vrrp_script":
			p.vrrpScript(s)
		case "static_ipaddress":
			if p.needBlock(s) {
				p.ipAddresses(s, &p.cfg.StaticIPAddresses)
			}
		case "local_address_group":
			p.localAddressGroup(s)
		default:
			if p.misplaced(s) {
				return
			}
			if topUnsupported[kw] {
				p.unsupported(s, "top level")
			} else {
				p.unknown(s, "top level")
			}
		}
	}
}

// notification are global_defs keywords about email and SNMP alerts,
// which uvs does not send.
var notification = map[string]bool{
	"notification_email": true, "notification_email_from": true, "smtp_server": true,
	"smtp_helo_name": true, "smtp_connect_timeout": true, "smtp_alert": true,
	"smtp_alert_vrrp": true, "smtp_alert_checker": true, "no_email_faults": true,
	"enable_traps": true, "snmp_socket": true, "enable_snmp_vrrp": true,
	"enable_snmp_checker": true, "enable_snmp_rfc": true, "enable_snmp_rfcv2": true,
	"enable_snmp_rfcv3": true, "enable_snmp_keepalived": true,
}

// globalUnsupported are global_defs keywords of keepalived that uvs does
// not implement (process tuning, firewalls, D-Bus, FIFOs, ...).
var globalUnsupported = map[string]bool{
	"checker_log_all_failures": true, "vrrp_iptables": true, "vrrp_ipsets": true,
	"nftables": true, "nftables_priority": true, "nftables_counters": true,
	"nftables_ifindex": true, "nftables_ipvs": true, "nftables_ipvs_priority": true,
	"nftables_ipvs_start_fwmark": true, "notify_fifo": true, "notify_fifo_script": true,
	"vrrp_notify_fifo": true, "vrrp_notify_fifo_script": true, "lvs_notify_fifo": true,
	"lvs_notify_fifo_script": true, "vrrp_no_swap": true, "checker_no_swap": true,
	"bfd_no_swap": true, "vrrp_priority": true, "checker_priority": true,
	"bfd_priority": true, "vrrp_rt_priority": true, "checker_rt_priority": true,
	"bfd_rt_priority": true, "vrrp_cpu_affinity": true, "checker_cpu_affinity": true,
	"bfd_cpu_affinity": true, "vrrp_rlimit_rttime": true, "checker_rlimit_rttime": true,
	"bfd_rlimit_rttime": true, "max_auto_priority": true, "min_auto_priority_delay": true,
	"enable_dbus": true, "dbus_service_name": true, "dbus_no_interface_name": true,
	"vrrp_garp_extra_if": true, "vrrp_down_timer_adverts": true,
	"vrrp_lower_prio_no_advert": true, "vrrp_higher_prio_send_advert": true,
	"v3_checksum_as_v2": true, "process_names": true, "process_name": true,
	"vrrp_process_name": true, "checker_process_name": true, "bfd_process_name": true,
	"tmp_config_directory": true, "config_save_dir": true, "use_symlink_paths": true,
	"set_supplementary_groups": true, "startup_script": true,
	"startup_script_timeout": true, "shutdown_script": true,
	"shutdown_script_timeout": true, "vrrp_startup_delay": true,
	"vrrp_rx_bufs_policy": true, "vrrp_rx_bufs_multiplier": true,
	"disable_local_igmp": true, "vrrp_notify_priority_changes": true,
	"snmp_vs_stats_update_interval": true, "snmp_rs_stats_update_interval": true,
	"linkbeat_use_polling": true, "net_namespace": true, "net_namespace_ipvs": true,
	"instance": true, "use_pid_dir": true, "child_wait_time": true,
	"script_security": true, "vrrp_netlink_cmd_rcv_bufs": true,
	"vrrp_netlink_monitor_rcv_bufs": true, "lvs_netlink_cmd_rcv_bufs": true,
	"lvs_netlink_monitor_rcv_bufs": true, "random_seed": true,
	"vrrp_track_process": true, "reload_check_config": true, "reload_time_file": true,
}

func (p *parser) globalDefs(open stmt) {
	if !p.needBlock(open) {
		return
	}
	g := &p.cfg.Global
	g.Pos = open.pos
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "router_id":
			g.RouterID = p.str(s, 1)
		case "default_interface":
			g.DefaultInterface = p.str(s, 1)
		case "lvs_timeouts":
			p.lvsTimeouts(s)
		case "lvs_sync_daemon":
			p.lvsSyncDaemon(s)
		case "lvs_flush":
			g.LVSFlush = true
		case "lvs_flush_on_stop":
			g.LVSFlushOnStop = true
		case "script_user":
			g.ScriptUser = p.rest(s, 1)
		case "enable_script_security":
			g.EnableScriptSecurity = true
		case "vrrp_version":
			g.VRRPVersion = int(p.uint(s, 1, 2, 3))
		case "vrrp_mcast_group4":
			if a := p.addr(s, 1); p.err == nil && !a.Is4() {
				p.fail(s.pos, "%s: %s is not an IPv4 address", kw, a)
			} else {
				g.VRRPMcastGroup4 = a
			}
		case "vrrp_mcast_group6":
			if a := p.addr(s, 1); p.err == nil && !a.Is6() {
				p.fail(s.pos, "%s: %s is not an IPv6 address", kw, a)
			} else {
				g.VRRPMcastGroup6 = a
			}
		case "vrrp_garp_master_delay":
			g.VRRPGarpMasterDelay = p.timer(s, 1)
		case "vrrp_garp_master_repeat":
			g.VRRPGarpMasterRepeat = int(p.uint(s, 1, 0, 255))
		case "vrrp_garp_master_refresh":
			g.VRRPGarpMasterRefresh = p.timer(s, 1)
		case "vrrp_garp_master_refresh_repeat":
			g.VRRPGarpMasterRefreshRepeat = int(p.uint(s, 1, 0, 255))
		case "vrrp_garp_lower_prio_delay":
			g.VRRPGarpLowerPrioDelay = p.timer(s, 1)
		case "vrrp_garp_lower_prio_repeat":
			g.VRRPGarpLowerPrioRepeat = int(p.uint(s, 1, 0, 255))
		case "vrrp_garp_interval":
			g.VRRPGarpInterval = p.timer(s, 1)
		case "vrrp_gna_interval":
			g.VRRPGnaInterval = p.timer(s, 1)
		case "vrrp_min_garp":
			g.VRRPMinGarp = p.boolArg(s, 1)
		case "vrrp_strict":
			g.VRRPStrict = true
		case "vrrp_skip_check_adv_addr":
			g.VRRPSkipCheckAdvAddr = p.boolArg(s, 1)
		case "vrrp_check_unicast_src":
			g.VRRPCheckUnicastSrc = true
		default:
			switch {
			case notification[kw]:
				p.warn(s.pos, "global_defs: %s ignored: uvs sends no email or SNMP notifications", kw)
				if s.block {
					p.skip(s)
				}
			case globalUnsupported[kw]:
				p.unsupported(s, "global_defs")
			default:
				p.unknown(s, "global_defs")
			}
			return
		}
		p.noBlock(s)
	})
	if g.VRRPGarpLowerPrioDelay < 0 {
		g.VRRPGarpLowerPrioDelay = g.VRRPGarpMasterDelay
	}
	if g.VRRPGarpLowerPrioRepeat < 0 {
		g.VRRPGarpLowerPrioRepeat = g.VRRPGarpMasterRepeat
	}
}

// lvsMaxTimeout is keepalived's LVS_MAX_TIMEOUT: 31 days.
const lvsMaxTimeout = 86400 * 31

// lvsTimeouts reads lvs_timeouts [tcp SECS] [tcpfin SECS] [udp SECS].
func (p *parser) lvsTimeouts(s stmt) {
	if len(s.words) < 3 {
		p.fail(s.pos, "lvs_timeouts: want at least one of tcp, tcpfin or udp with seconds")
		return
	}
	t := &p.cfg.Global.LVSTimeouts
	for i := 1; i < len(s.words) && p.err == nil; i += 2 {
		v := uint32(p.uint(s, i+1, 1, lvsMaxTimeout))
		switch s.words[i] {
		case "tcp":
			t.TCP = v
		case "tcpfin":
			t.TCPFin = v
		case "udp":
			t.UDP = v
		default:
			p.fail(s.pos, "lvs_timeouts: unknown timeout %q (want tcp, tcpfin or udp)", s.words[i])
		}
	}
}

// lvsSyncDaemon reads lvs_sync_daemon <INTERFACE> [[inst] <VRRP_INSTANCE>]
// [id <SYNC_ID>] [maxlen <LEN>] [port <PORT>] [ttl <TTL>] [group <IP>].
func (p *parser) lvsSyncDaemon(s stmt) {
	d := &LVSSyncDaemon{Pos: s.pos, Port: 8848, Group: netip.MustParseAddr("224.0.0.81")}
	d.Interface = p.str(s, 1)
	hasID := false
	for i := 2; i < len(s.words) && p.err == nil; i += 2 {
		switch s.words[i] {
		case "inst":
			d.Instance = p.str(s, i+1)
		case "id":
			d.SyncID, hasID = uint8(p.uint(s, i+1, 0, 255)), true
		case "maxlen":
			d.MaxLen = uint16(p.uint(s, i+1, 1, 65507))
		case "port":
			d.Port = p.port(s, i+1)
		case "ttl":
			d.TTL = uint8(p.uint(s, i+1, 1, 255))
		case "group":
			d.Group = p.addr(s, i+1)
			if p.err == nil && !d.Group.IsMulticast() {
				p.fail(s.pos, "lvs_sync_daemon: group %s is not a multicast address", d.Group)
			}
		default:
			if d.Instance != "" || i != 2 {
				p.fail(s.pos, "lvs_sync_daemon: unknown option %q", s.words[i])
				return
			}
			d.Instance = s.words[i] // the instance without "inst", as keepalived allows
			i--
		}
	}
	if !hasID {
		d.SyncID = 0 // resolved from the instance's virtual_router_id in validate
	}
	p.cfg.Global.LVSSyncDaemon = d
	p.syncIDSet = hasID
}

// ipAddressFlags are the ip-address(8) words keepalived accepts alone.
var ipAddressFlags = map[string]bool{
	"home": true, "-nodad": true, "nodad": true, "mngtmpaddr": true, "noprefixroute": true,
	"autojoin": true, "no_track": true, "use_vmac": true,
}

// ipAddresses reads a block of addresses: <IPADDR>[/<MASK>] [brd <IPADDR>]
// [dev <STRING>] [scope <SCOPE>] [label <LABEL>] [peer <IPADDR>] ...
func (p *parser) ipAddresses(open stmt, out *[]IPAddress) {
	p.entries(open, func(s stmt) {
		a := IPAddress{Pos: s.pos}
		w := s.words[0]
		if strings.Contains(w, "/") {
			pfx, err := netip.ParsePrefix(w)
			if err != nil {
				p.fail(s.pos, "%s: bad address %q", open.kw(), w)
				return
			}
			a.Prefix = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits())
		} else {
			ip, err := netip.ParseAddr(w)
			if err != nil {
				p.fail(s.pos, "%s: bad address %q", open.kw(), w)
				return
			}
			ip = ip.Unmap()
			a.Prefix = netip.PrefixFrom(ip, ip.BitLen())
		}
		for i := 1; i < len(s.words) && p.err == nil; i++ {
			opt := s.words[i]
			switch opt {
			case "brd", "broadcast":
				a.Broadcast = p.addrWord(s, i+1, open.kw())
				i++
			case "peer":
				a.Peer = p.addrWord(s, i+1, open.kw())
				i++
			case "dev":
				a.Dev = p.str(s, i+1)
				i++
			case "label":
				a.Label = p.str(s, i+1)
				i++
			case "scope":
				a.Scope = p.str(s, i+1)
				i++
			case "preferred_lft", "track_group":
				a.Flags = append(a.Flags, opt+" "+p.str(s, i+1))
				i++
			default:
				if ipAddressFlags[opt] {
					a.Flags = append(a.Flags, opt)
					continue
				}
				p.warn(s.pos, "%s: unknown address option %q, ignored", open.kw(), opt)
			}
		}
		*out = append(*out, a)
	})
}

// addrWord is argument n of s as an address, with where in the message.
func (p *parser) addrWord(s stmt, n int, where string) netip.Addr {
	a := p.str(s, n)
	if p.err != nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		p.fail(s.pos, "%s: bad address %q", where, a)
		return netip.Addr{}
	}
	return ip.Unmap()
}

// localAddressGroup reads local_address_group NAME { addr ... }: the
// addresses FULLNAT connections leave from.
func (p *parser) localAddressGroup(open stmt) {
	name := p.str(open, 1)
	if p.err != nil || !p.needBlock(open) {
		return
	}
	if p.cfg.LocalAddressGroups == nil {
		p.cfg.LocalAddressGroups = map[string][]netip.Addr{}
	}
	if _, dup := p.cfg.LocalAddressGroups[name]; dup {
		p.fail(open.pos, "local_address_group %s: defined twice", name)
		return
	}
	var addrs []netip.Addr
	p.entries(open, func(s stmt) {
		// An address or a range, as in a virtual_server_group.
		first, last, ok := parseRange(s.words[0])
		if !ok || !first.Is4() {
			p.fail(s.pos, "local_address_group %s: bad address %q", name, s.words[0])
			return
		}
		for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
			addrs = append(addrs, a)
		}
	})
	p.cfg.LocalAddressGroups[name] = addrs
}
