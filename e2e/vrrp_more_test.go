package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedVRRPUseVMAC: with use_vmac the VIP keeps the virtual MAC
// 00:00:5e:00:01:<VRID> across a failover, so the client's ARP entry
// never changes, and traffic goes on through the new MASTER.
func TestPrivilegedVRRPUseVMAC(t *testing.T) {
	v := newVRRPLab(t)
	a := v.startPair(t, lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1", UseVMAC: true}, nil)
	vip := v.topo.VIP.String()
	if words := curlClose(t, v.topo.Client, "http://"+vip+"/", 10); len(words) != 10 {
		t.Fatalf("%d answers", len(words))
	}
	const vmac = "00:00:5e:00:01:33" // VRID 51
	if got := v.vipMAC(t); got != vmac {
		t.Fatalf("client's ARP entry for the VIP: %s, want %s", got, vmac)
	}
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 1, "MASTER", 3*time.Second)
	if words := curlClose(t, v.topo.Client, "http://"+vip+"/", 10); len(words) != 10 {
		t.Fatalf("%d answers after the failover", len(words))
	}
	if got := v.vipMAC(t); got != vmac {
		t.Fatalf("client's ARP entry for the VIP after the failover: %s, want %s", got, vmac)
	}
}

// unicastConf turns director i's configuration into unicast VRRP: each
// instance sends to the other director's address on its segment.
func (v *vrrpLab) unicastConf(i int, conf string) string {
	p := 1 - i
	conf = strings.Replace(conf, "    interface d0\n", fmt.Sprintf("    interface d0\n    unicast_src_ip %v\n    unicast_peer {\n        %v\n    }\n",
		v.topo.DirClientIPs[i], v.topo.DirClientIPs[p]), 1)
	return strings.Replace(conf, "    interface d1\n", fmt.Sprintf("    interface d1\n    unicast_src_ip %v\n    unicast_peer {\n        %v\n    }\n",
		v.topo.DirServerIPs[i], v.topo.DirServerIPs[p]), 1)
}

// TestPrivilegedVRRPUnicast: unicast_src_ip/unicast_peer instead of the
// multicast group; failover works the same.
func TestPrivilegedVRRPUnicast(t *testing.T) {
	v := newVRRPLab(t)
	a := v.startPair(t, lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1"}, v.unicastConf)
	waitMetric(t, v.topo.Directors[1], `uvs_vrrp_adverts_received_total{instance="VI_GW"}`, 3*time.Second,
		"at least 5 unicast adverts", func(n uint64) bool { return n >= 5 })
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 1, "MASTER", 3*time.Second)
	if words := curlClose(t, v.topo.Client, "http://"+v.topo.VIP.String()+"/", 10); len(words) != 10 {
		t.Fatalf("%d answers after the failover", len(words))
	}
}

// TestPrivilegedVRRPTrackScript: a failing vrrp_script (weight 0) puts
// the MASTER's instance in FAULT, and its sync group with it; the BACKUP
// takes over; when the script succeeds again the higher-priority director
// returns and preempts.
func TestPrivilegedVRRPTrackScript(t *testing.T) {
	v := newVRRPLab(t)
	down := filepath.Join(t.TempDir(), "down")
	script := fmt.Sprintf("vrrp_script chk {\n    script \"/bin/sh -c '! test -e %s'\"\n    interval 1\n    fall 1\n    rise 1\n}\n", down)
	v.startPair(t, lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1"}, func(_ int, c string) string {
		c = strings.Replace(c, "vrrp_sync_group", script+"\nvrrp_sync_group", 1)
		return strings.Replace(c, "    interface d0\n", "    interface d0\n    track_script {\n        chk\n    }\n", 1)
	})
	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 0, "FAULT", 5*time.Second) // both instances: the group follows
	v.waitState(t, 1, "MASTER", 3*time.Second)
	if words := curlClose(t, v.topo.Client, "http://"+v.topo.VIP.String()+"/", 10); len(words) != 10 {
		t.Fatalf("%d answers with dirA in FAULT", len(words))
	}
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 0, "MASTER", 8*time.Second)
	v.waitState(t, 1, "BACKUP", 3*time.Second)
}

// TestPrivilegedVRRPPersistenceSync: persistence templates are synced, so
// after a failover a client keeps its real server; a graceful stop
// (SIGTERM: a priority-0 advert) hands over within Skew_Time rather than
// Master_Down_Interval.
func TestPrivilegedVRRPPersistenceSync(t *testing.T) {
	v := newVRRPLab(t)
	a := v.startPair(t, lab.VRRPConfOptions{Version: 3, AdvertInt: "0.1"}, func(_ int, c string) string {
		return strings.ReplaceAll(c, "    lb_kind NAT\n", "    lb_kind NAT\n    persistence_timeout 60\n")
	})
	vip := "http://" + v.topo.VIP.String() + "/"
	// Another client network takes rr's first pick, so that the lab
	// client's template names the server a fresh rr would not pick
	// first: only a synced template keeps it there after the failover.
	if err := v.topo.Client.Addr(lab.VRRPClientDev, "198.18.0.5/24"); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	other, err := v.topo.Client.Run(rctx, "curl", "-sS", "--fail", "--max-time", "5", "--interface", "198.18.0.5", vip)
	if err != nil {
		t.Fatalf("curl from the other network: %v: %s", err, other)
	}
	first := curlClose(t, v.topo.Client, vip, 4)
	if strings.TrimSpace(other) == first[0] {
		t.Fatalf("both clients on %s: rr did not move on", first[0])
	}
	for _, w := range first {
		if w != first[0] {
			t.Fatalf("persistence: answers %v from more than one server", first)
		}
	}
	waitMetric(t, v.topo.Directors[1], "uvs_sync_records_imported_total", 5*time.Second,
		"at least 5", func(n uint64) bool { return n >= 5 })
	stopped := time.Now()
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	v.waitState(t, 1, "MASTER", 3*time.Second)
	took := time.Since(stopped)
	t.Logf("graceful handover in %v", took)
	if mdi := 360 * time.Millisecond; took >= mdi {
		t.Errorf("graceful handover took %v, not less than Master_Down_Interval %v", took, mdi)
	}
	for _, w := range curlClose(t, v.topo.Client, vip, 6) {
		if w != first[0] {
			t.Fatalf("after the failover the client went to %s, its template said %s", w, first[0])
		}
	}
}
