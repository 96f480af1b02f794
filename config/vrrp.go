package config

import (
	"math"
	"net/netip"
	"strings"
	"time"
)

// vrrpUnsupported are vrrp_instance keywords uvs does not implement.
var vrrpUnsupported = map[string]bool{
	"virtual_routes": true, "virtual_rules": true, "track_file": true, "track_process": true,
	"track_bfd": true, "track_src_ip": true, "use_ipvlan": true, "use_vmac_addr": true,
	"vrf": true, "mcast_dst_ip": true, "unicast_ttl": true, "unicast_fault_no_peer": true,
	"old_unicast_checksum": true, "v3_checksum_as_v2": true, "garp_extra_if": true,
	"down_timer_adverts": true, "timer_expired_backup": true, "lower_prio_no_advert": true,
	"higher_prio_send_advert": true, "notify_master_rx_lower_pri": true,
	"notify_priority_changes": true, "kernel_rx_buf_size": true, "linkbeat_use_polling": true,
	"promote_secondaries": true, "no_virtual_ipaddress": true, "check_unicast_src": true,
	"skip_check_adv_addr": true, "auth_hmac": true, "notify_deleted": true,
	"debug": true, "native_ipv6": true,
}

func (p *parser) vrrpScript(open stmt) {
	sc := VRRPScript{Pos: open.pos, Interval: time.Second, Timeout: unsetDuration, Rise: 1, Fall: 1}
	sc.Name = p.str(open, 1)
	p.extra(open, 1)
	if p.err != nil || !p.needBlock(open) {
		return
	}
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "script":
			sc.Script = p.rest(s, 1)
		case "interval":
			sc.Interval = p.positiveTimer(s)
		case "timeout":
			sc.Timeout = p.positiveTimer(s)
		case "weight":
			sc.Weight = int(p.int(s, 1, -253, 253))
			if len(s.words) > 2 {
				sc.Reverse = s.words[2] == "reverse"
			}
		case "rise":
			sc.Rise = int(p.uint(s, 1, 1, math.MaxInt32))
		case "fall":
			sc.Fall = int(p.uint(s, 1, 1, math.MaxInt32))
		case "user":
			sc.User = p.rest(s, 1)
		case "init_fail":
			sc.InitFail = true
		default:
			p.unknown(s, "vrrp_script")
			return
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return
	}
	if sc.Script == "" {
		p.fail(open.pos, "vrrp_script %s: missing script", sc.Name)
		return
	}
	if sc.Timeout < 0 {
		sc.Timeout = sc.Interval
	}
	p.cfg.VRRPScripts = append(p.cfg.VRRPScripts, sc)
}

func (p *parser) vrrpInstance(open stmt) {
	vi := VRRPInstance{
		Pos: open.pos, State: "BACKUP", Priority: 100, AdvertInt: time.Second,
		Accept:          true,
		GarpMasterDelay: unsetDuration, GarpMasterRepeat: unsetInt,
		GarpMasterRefresh: unsetDuration, GarpMasterRefreshRepeat: unsetInt,
		GarpLowerPrioDelay: unsetDuration, GarpLowerPrioRepeat: unsetInt,
	}
	vi.Name = p.str(open, 1)
	p.extra(open, 1)
	if p.err != nil || !p.needBlock(open) {
		return
	}
	hasVRID, acceptSet := false, false
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "virtual_ipaddress":
			if p.needBlock(s) {
				p.ipAddresses(s, &vi.VirtualIPs)
			}
			return
		case "virtual_ipaddress_excluded":
			if p.needBlock(s) {
				p.ipAddresses(s, &vi.ExcludedIPs)
			}
			return
		case "unicast_peer":
			if p.needBlock(s) {
				p.entries(s, func(e stmt) {
					a, err := netip.ParseAddr(e.kw())
					if err != nil {
						p.fail(e.pos, "unicast_peer: bad address %q", e.kw())
						return
					}
					vi.UnicastPeers = append(vi.UnicastPeers, a.Unmap())
				})
			}
			return
		case "track_interface":
			if p.needBlock(s) {
				vi.TrackInterfaces = p.tracks(s, vi.TrackInterfaces)
			}
			return
		case "track_script":
			if p.needBlock(s) {
				vi.TrackScripts = p.tracks(s, vi.TrackScripts)
			}
			return
		case "authentication":
			if p.needBlock(s) {
				p.authentication(s, &vi)
			}
			return
		case "state":
			vi.State = strings.ToUpper(p.str(s, 1))
			if p.err == nil && vi.State != "MASTER" && vi.State != "BACKUP" {
				p.fail(s.pos, "state: unknown state %q (want MASTER or BACKUP)", s.words[1])
			}
		case "interface":
			vi.Interface = p.str(s, 1)
		case "virtual_router_id":
			vi.VirtualRouterID, hasVRID = uint8(p.uint(s, 1, 1, 255)), true
		case "priority":
			vi.Priority = uint8(p.uint(s, 1, 1, 255))
		case "advert_int":
			vi.AdvertInt = p.positiveTimer(s)
		case "version":
			vi.Version = int(p.uint(s, 1, 2, 3))
		case "nopreempt", "no_preempt":
			vi.NoPreempt = true
		case "preempt":
			vi.NoPreempt = false
		case "preempt_delay":
			vi.PreemptDelay = p.timer(s, 1)
			if p.err == nil && vi.PreemptDelay > 1000*time.Second {
				p.fail(s.pos, "preempt_delay: %s out of range 0-1000", s.words[1])
			}
		case "accept":
			vi.Accept, acceptSet = true, true
		case "no_accept":
			vi.Accept, acceptSet = false, true
		case "mcast_src_ip":
			vi.McastSrcIP = p.addr(s, 1)
		case "unicast_src_ip":
			vi.UnicastSrcIP = p.addr(s, 1)
		case "dont_track_primary":
			vi.DontTrackPrimary = true
		case "strict_mode":
			vi.StrictMode = p.boolArg(s, 1)
		case "notify_master":
			vi.NotifyMaster = p.rest(s, 1)
		case "notify_backup":
			vi.NotifyBackup = p.rest(s, 1)
		case "notify_fault":
			vi.NotifyFault = p.rest(s, 1)
		case "notify_stop":
			vi.NotifyStop = p.rest(s, 1)
		case "notify":
			vi.Notify = p.rest(s, 1)
		case "garp_master_delay":
			vi.GarpMasterDelay = p.timer(s, 1)
		case "garp_master_repeat":
			vi.GarpMasterRepeat = int(p.uint(s, 1, 0, 255))
		case "garp_master_refresh":
			vi.GarpMasterRefresh = p.timer(s, 1)
		case "garp_master_refresh_repeat":
			vi.GarpMasterRefreshRepeat = int(p.uint(s, 1, 0, 255))
		case "garp_lower_prio_delay":
			vi.GarpLowerPrioDelay = p.timer(s, 1)
		case "garp_lower_prio_repeat":
			vi.GarpLowerPrioRepeat = int(p.uint(s, 1, 0, 255))
		case "use_vmac":
			vi.UseVMAC = true
			p.vmac(s, &vi)
		case "vmac_xmit_base":
			vi.VMACXmitBase = true
		case "lvs_sync_daemon_interface":
			ifname := p.str(s, 1)
			if p.err == nil && p.cfg.Global.LVSSyncDaemon == nil {
				p.cfg.Global.LVSSyncDaemon = &LVSSyncDaemon{
					Pos: s.pos, Interface: ifname, Instance: vi.Name,
					Port: 8848, Group: netip.MustParseAddr("224.0.0.81"),
				}
			}
			p.warn(s.pos, "lvs_sync_daemon_interface is deprecated, use global_defs lvs_sync_daemon")
		case "smtp_alert":
			p.warn(s.pos, "vrrp_instance: smtp_alert ignored: uvs sends no email")
		default:
			switch {
			case p.misplaced(s):
			case vrrpUnsupported[kw]:
				p.unsupported(s, "vrrp_instance")
			default:
				p.unknown(s, "vrrp_instance")
			}
			return
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return
	}
	if !hasVRID {
		p.fail(open.pos, "vrrp_instance %s: missing virtual_router_id", vi.Name)
		return
	}
	if !acceptSet && (p.cfg.Global.VRRPStrict || vi.StrictMode) {
		vi.Accept = vi.Priority == 255
	}
	for _, a := range vi.VirtualIPs {
		vi.VirtualIPAddresses = append(vi.VirtualIPAddresses, a.Prefix)
	}
	p.cfg.VRRPInstances = append(p.cfg.VRRPInstances, vi)
}

// vmac reads use_vmac [[name] <IFNAME>] [<MAC>] [netlink_notify_msg] [group N].
func (p *parser) vmac(s stmt, vi *VRRPInstance) {
	for i := 1; i < len(s.words); i++ {
		switch w := s.words[i]; {
		case w == "name":
			vi.VMACName = p.str(s, i+1)
			i++
		case w == "group":
			p.str(s, i+1)
			i++
		case w == "netlink_notify_msg":
		case strings.Count(w, ":") >= 4:
			vi.VMACAddr = w
		case vi.VMACName == "":
			vi.VMACName = w
		default:
			p.warn(s.pos, "use_vmac: unknown option %q, ignored", w)
		}
	}
}

// authentication reads authentication { auth_type PASS|AH auth_pass X }.
func (p *parser) authentication(open stmt, vi *VRRPInstance) {
	p.body(open, func(s stmt) {
		switch s.kw() {
		case "auth_type":
			vi.AuthType = strings.ToUpper(p.str(s, 1))
			if p.err == nil && vi.AuthType != "PASS" && vi.AuthType != "AH" {
				p.fail(s.pos, "auth_type: unknown type %q (want PASS or AH)", s.words[1])
			}
		case "auth_pass":
			vi.AuthPass = p.str(s, 1)
			if len(vi.AuthPass) > 8 {
				p.warn(s.pos, "auth_pass: only the first 8 characters are used")
				vi.AuthPass = vi.AuthPass[:8]
			}
		default:
			p.unknown(s, "authentication")
			return
		}
		p.noBlock(s)
	})
	if p.err == nil && vi.AuthType == "PASS" && vi.AuthPass == "" {
		// Sender and receiver must agree: without a password there is
		// no PASS authentication at all.
		p.warn(open.pos, "authentication: auth_type PASS without auth_pass, authentication off")
		vi.AuthType = ""
	}
}

// tracks reads track_interface or track_script entries:
// NAME [weight <-253..253>] [reverse|noreverse].
func (p *parser) tracks(open stmt, out []Track) []Track {
	p.entries(open, func(s stmt) {
		t := Track{Pos: s.pos, Name: s.kw()}
		for i := 1; i < len(s.words) && p.err == nil; i++ {
			switch s.words[i] {
			case "weight":
				t.Weight = int(p.int(s, i+1, -253, 253))
				i++
			case "reverse":
				t.Reverse = true
			case "noreverse":
				t.Reverse = false
			default:
				p.fail(s.pos, "%s: unknown option %q for %s", open.kw(), s.words[i], t.Name)
			}
		}
		out = append(out, t)
	})
	return out
}

// syncUnsupported are vrrp_sync_group keywords uvs does not implement.
var syncUnsupported = map[string]bool{
	"track_file": true, "track_process": true, "track_bfd": true, "global_tracking": true,
	"sync_group_tracking_weight": true, "notify_priority_changes": true, "notify_deleted": true,
}

func (p *parser) vrrpSyncGroup(open stmt) {
	g := VRRPSyncGroup{Pos: open.pos}
	g.Name = p.str(open, 1)
	p.extra(open, 1)
	if p.err != nil || !p.needBlock(open) {
		return
	}
	p.body(open, func(s stmt) {
		switch kw := s.kw(); kw {
		case "group":
			if p.needBlock(s) {
				p.entries(s, func(e stmt) { g.Group = append(g.Group, e.words...) })
			}
			return
		case "track_interface":
			if p.needBlock(s) {
				g.TrackInterfaces = p.tracks(s, g.TrackInterfaces)
			}
			return
		case "track_script":
			if p.needBlock(s) {
				g.TrackScripts = p.tracks(s, g.TrackScripts)
			}
			return
		case "notify_master":
			g.NotifyMaster = p.rest(s, 1)
		case "notify_backup":
			g.NotifyBackup = p.rest(s, 1)
		case "notify_fault":
			g.NotifyFault = p.rest(s, 1)
		case "notify_stop":
			g.NotifyStop = p.rest(s, 1)
		case "notify":
			g.Notify = p.rest(s, 1)
		case "smtp_alert":
			p.warn(s.pos, "vrrp_sync_group: smtp_alert ignored: uvs sends no email")
		default:
			switch {
			case syncUnsupported[kw]:
				p.unsupported(s, "vrrp_sync_group")
			case !s.block:
				// keepalived's first syntax listed members bare.
				p.warn(s.pos, "vrrp_sync_group %s: bare member %s, put members in group { }", g.Name, strings.Join(s.words, " "))
				g.Group = append(g.Group, s.words...)
			default:
				p.unknown(s, "vrrp_sync_group")
			}
			return
		}
		p.noBlock(s)
	})
	if p.err != nil {
		return
	}
	p.cfg.VRRPSyncGroups = append(p.cfg.VRRPSyncGroups, g)
}
