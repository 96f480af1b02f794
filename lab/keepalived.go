package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// VRRPConfOptions shape VRRPLab.KeepalivedConf. The zero value is VRRPv2
// (keepalived's default), advert_int 1, priority 150 for dirA, 100 for
// dirB, 50 for dirC, no authentication, notify scripts or services.
type VRRPConfOptions struct {
	// Version is global_defs' vrrp_version, 2 or 3; 0 leaves it out.
	Version int
	// AdvertInt is both instances' advert_int in keepalived's seconds,
	// "0.1" or "1"; "" leaves it out (1 s).
	AdvertInt string
	// Priority is both instances' priority, 1..255; 0 means 150 - 50×i.
	Priority int
	// State is both instances' initial state, MASTER or BACKUP; "" means
	// MASTER for director 0 and BACKUP for the others, and BACKUP for all
	// when NoPreempt or PreemptDelay is set (keepalived ignores both on
	// an initial MASTER).
	State string
	// NoPreempt emits nopreempt, PreemptDelay (seconds) preempt_delay.
	NoPreempt    bool
	PreemptDelay string
	// AuthPass, when set, is VRRPv2 PASS authentication's password.
	AuthPass string
	// NotifyDir, when set, gets the notify script, which both instances
	// and the sync group run on every transition: it writes the new state
	// (MASTER, BACKUP, FAULT, STOP) to NotifyDir/<name>.state and appends
	// it to NotifyDir/<name>.log, name being VI_VIP, VI_GW or VG (see
	// State, WaitState). KeepalivedConf writes the script, mode 0755; if
	// that fails, WaitState says why.
	NotifyDir string
	// Sync emits `lvs_sync_daemon d1 VI_GW id 7` in global_defs.
	// Keepalived's VRRP process then needs ip_vs: without it (as on the
	// lab's machines) keepalived 2.2.7's VRRP process crashes, and StartKeepalived
	// fails. Leave it off for real keepalived there.
	Sync bool
	// VirtualServers emits the standard services: VIP:80 TCP and VIP:5353
	// UDP, rr over every real server on the same port, NAT, delay_loop 1.
	// keepalived --vrrp ignores them, but they mean IPVS: leave it off
	// for real keepalived without ip_vs.
	VirtualServers bool
	// UseVMAC emits use_vmac in both instances.
	UseVMAC bool
}

// VRRPSyncID is the sync daemon's id that VRRPConfOptions.Sync emits.
const VRRPSyncID = 7

// notifyScript is the notify script's file name in NotifyDir, and its
// text: keepalived and uvsd call it with INSTANCE|GROUP, the name, the
// new state and the priority. The state file is replaced whole, so a
// reader never sees it half written.
const (
	notifyScript     = "notify.sh"
	notifyScriptText = `#!/bin/sh
# uvs lab notify script: $1 INSTANCE or GROUP, $2 its name, $3 the new state, $4 the priority.
d=$(dirname "$0")
printf '%s\n' "$3" >>"$d/$2.log"
printf '%s\n' "$3" >"$d/$2.state.$$" && mv -f "$d/$2.state.$$" "$d/$2.state"
`
)

// WriteNotifyScript writes the lab's notify script (the one
// VRRPConfOptions.NotifyDir gets) into dir, created if missing, and
// returns its absolute path, for a keepalived.conf of one's own: as
// `notify "<path>"` of an instance or sync group, it records each new
// state for State and WaitState.
func WriteNotifyScript(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, notifyScript)
	if err := os.WriteFile(p, []byte(notifyScriptText), 0o755); err != nil {
		return "", err
	}
	// WriteFile keeps an existing file's mode.
	return p, os.Chmod(p, 0o755)
}

// KeepalivedConf returns director i's (0-based) keepalived.conf, read
// alike by uvsd and by keepalived: global_defs with router_id dirA (dirB,
// ...), the sync group VG of VI_VIP (VRID 51 on d0, the VIP/24) and VI_GW
// (VRID 52 on d1, the gateway/24), and with o.VirtualServers the
// standard services. It panics if there is no director i.
func (t *VRRPLab) KeepalivedConf(i int, o VRRPConfOptions) string {
	if i < 0 || i >= len(t.DirClientIPs) {
		panic(fmt.Sprintf("lab: KeepalivedConf(%d) in a lab of %d directors", i, len(t.DirClientIPs)))
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("! uvs VRRP lab: director %s (%d of %d)\n", dirName(i), i+1, len(t.DirClientIPs))
	notify := ""
	if o.NotifyDir != "" {
		p, err := WriteNotifyScript(o.NotifyDir)
		if err != nil {
			w("! notify script: %v\n", err)
		}
		notify = fmt.Sprintf("    notify %q\n", p)
	}
	w("global_defs {\n    router_id %s\n", dirName(i))
	if o.Version != 0 {
		w("    vrrp_version %d\n", o.Version)
	}
	if o.Sync {
		w("    lvs_sync_daemon %s %s id %d\n", VRRPDirServerDev, VRRPInstanceGW, VRRPSyncID)
	}
	if notify != "" {
		w("    script_user root\n")
	}
	w("}\n\n")

	w("vrrp_sync_group %s {\n    group {\n        %s\n        %s\n    }\n%s}\n",
		VRRPSyncGroup, VRRPInstanceVIP, VRRPInstanceGW, notify)

	state := o.State
	if state == "" {
		state = "BACKUP"
		if i == 0 && !o.NoPreempt && o.PreemptDelay == "" {
			state = "MASTER"
		}
	}
	prio := o.Priority
	if prio == 0 {
		prio = 150 - 50*i
	}
	for _, vi := range []struct {
		name, dev string
		vrid      int
		addr      string
	}{
		{VRRPInstanceVIP, VRRPDirClientDev, VRRPRouterIDVIP, fmt.Sprintf("%v/%d", t.VIP, natClientNet.Bits())},
		{VRRPInstanceGW, VRRPDirServerDev, VRRPRouterIDGW, fmt.Sprintf("%v/%d", t.GatewayIP, natServerNet.Bits())},
	} {
		w("\nvrrp_instance %s {\n", vi.name)
		w("    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n", state, vi.dev, vi.vrid, prio)
		if o.AdvertInt != "" {
			w("    advert_int %s\n", o.AdvertInt)
		}
		if o.NoPreempt {
			w("    nopreempt\n")
		}
		if o.PreemptDelay != "" {
			w("    preempt_delay %s\n", o.PreemptDelay)
		}
		if o.UseVMAC {
			w("    use_vmac\n")
		}
		if o.AuthPass != "" {
			w("    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", o.AuthPass)
		}
		b.WriteString(notify)
		w("    virtual_ipaddress {\n        %s\n    }\n}\n", vi.addr)
	}

	if o.VirtualServers {
		for _, vs := range []struct {
			proto string
			port  int
		}{{"TCP", VRRPHTTPPort}, {"UDP", VRRPUDPPort}} {
			w("\nvirtual_server %v %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol %s\n", t.VIP, vs.port, vs.proto)
			for _, ip := range t.RSIPs {
				w("    real_server %v %d {\n        weight 1\n    }\n", ip, vs.port)
			}
			w("}\n")
		}
	}
	return b.String()
}

// Keepalived is Debian's keepalived running its VRRP part only in a
// namespace, its files in one folder.
type Keepalived struct {
	ns   *NS
	dir  string
	proc *Proc
}

// keepalivedStartTimeout bounds StartKeepalived's wait for the VRRP
// process.
const keepalivedStartTimeout = 10 * time.Second

// keepalivedReady is what keepalived's VRRP process logs once it has read
// its configuration and opened its sockets (2.2.7; a configuration it
// cannot run, lvs_sync_daemon without ip_vs for one, kills the process
// before).
const keepalivedReady = "Startup complete"

// StartKeepalived writes conf to dir/keepalived.conf (dir absolute or
// not, created if missing) and runs keepalived's VRRP part in the
// namespace as a lab process:
//
//	keepalived --vrrp -n -l -D -G -R -f dir/keepalived.conf -p dir/keepalived.pid
//	           -r dir/vrrp.pid -c dir/checkers.pid -b dir/bfd.pid
//
// in the foreground (-n), logging to its output (-l -D) and not to syslog
// (-G), every pid file in dir so that keepalived processes in different
// namespaces never meet. A VRRP process that dies takes keepalived with
// it (-R) instead of being respawned behind the test's back. It returns
// once the VRRP process runs and has logged "Startup complete" (at most
// 10 s); a keepalived that exits before fails it, with its log.
func (n *NS) StartKeepalived(dir, conf string) (*Keepalived, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	k := &Keepalived{ns: n, dir: dir}
	vrrpPid := filepath.Join(dir, "vrrp.pid")
	// A stale pid file from an earlier run must not pass for this one.
	for _, f := range []string{"keepalived.pid", "vrrp.pid", "checkers.pid", "bfd.pid"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	p, err := n.Start("keepalived", "--vrrp", "-n", "-l", "-D", "-G", "-R",
		"-f", cf,
		"-p", filepath.Join(dir, "keepalived.pid"),
		"-r", vrrpPid,
		"-c", filepath.Join(dir, "checkers.pid"),
		"-b", filepath.Join(dir, "bfd.pid"))
	if err != nil {
		return nil, err
	}
	k.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), keepalivedStartTimeout)
	defer cancel()
	err = Eventually(ctx, 10*time.Millisecond, func() error {
		if p.Exited() {
			return errExited
		}
		b, err := os.ReadFile(vrrpPid)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", vrrpPid, err)
		}
		if err := syscall.Kill(pid, 0); err != nil {
			return fmt.Errorf("VRRP process %d: %w", pid, err)
		}
		if !strings.Contains(p.Output(), keepalivedReady) {
			return fmt.Errorf("no %q logged yet", keepalivedReady)
		}
		return nil
	})
	if errors.Is(err, errExited) || p.Exited() {
		return nil, fmt.Errorf("keepalived in %s exited before its VRRP process was up (%v):\n%s", n.name, p.Wait(), p.Output())
	}
	if err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("keepalived in %s: no VRRP process: %w\n%s", n.name, err, p.Output())
	}
	return k, nil
}

// Dir is keepalived's folder: keepalived.conf and the pid files.
func (k *Keepalived) Dir() string { return k.dir }

// Proc is the keepalived parent process; its output is keepalived's log.
func (k *Keepalived) Proc() *Proc { return k.proc }

// Stop stops keepalived gracefully (SIGTERM: a MASTER sends a priority-0
// advert and removes its addresses; SIGKILL after 2 s).
func (k *Keepalived) Stop() error { return k.proc.Stop() }

// Kill kills keepalived, its VRRP process with it (SIGKILL to the
// process group), as a node dies: no last advert, and the addresses it
// had added stay where they are. It returns once the parent is reaped.
func (k *Keepalived) Kill() error {
	if err := k.proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-k.proc.Done()
	return nil
}

// State is the state (MASTER, BACKUP, FAULT, STOP) the notify script of
// VRRPConfOptions.NotifyDir (or WriteNotifyScript) last recorded for
// instance (an instance or sync group name), "" if none yet.
func State(notifyDir, instance string) (string, error) {
	b, err := os.ReadFile(filepath.Join(notifyDir, instance+".state"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// WaitState waits until the notify script of VRRPConfOptions.NotifyDir
// has recorded want (MASTER, BACKUP, FAULT, STOP) as the state of
// instance (an instance or sync group name: VI_VIP, VI_GW, VG), polling
// its state file every 10 ms until ctx ends.
func WaitState(ctx context.Context, notifyDir, instance, want string) error {
	err := Eventually(ctx, 10*time.Millisecond, func() error {
		got, err := State(notifyDir, instance)
		if err != nil {
			return err
		}
		if got == "" {
			if _, serr := os.Stat(filepath.Join(notifyDir, notifyScript)); serr != nil {
				return fmt.Errorf("no notify script: %w", serr)
			}
			return fmt.Errorf("%s: no state yet", instance)
		}
		if got != want {
			return fmt.Errorf("%s is %s", instance, got)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to be %s: %w", instance, want, err)
	}
	return nil
}
