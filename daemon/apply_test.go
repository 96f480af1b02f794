package daemon

import (
	"strings"
	"testing"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/service"
)

func parse(t *testing.T, s string) *config.Config {
	t.Helper()
	c, err := config.Parse("keepalived.conf", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const base = `global_defs {
    lvs_timeouts tcp 600 tcpfin 60 udp 30
}
virtual_server 198.18.0.100 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    real_server 198.19.0.11 8080 {
        weight 3
    }
    real_server 198.19.0.12 8080 {
        weight 1
    }
}
vrrp_instance GW {
    interface d1
    virtual_router_id 7
    virtual_ipaddress {
        198.19.0.254/24
    }
}
`

func TestApply(t *testing.T) {
	m := service.NewModel()
	if err := Apply(parse(t, base), m); err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot()
	if len(s.Services) != 1 {
		t.Fatalf("%d services", len(s.Services))
	}
	svc := s.Services[0]
	if svc.Cfg.Sched != "wrr" || !svc.Cfg.Persistent || svc.Cfg.Timeout != 50 || svc.Cfg.Netmask != 24 {
		t.Errorf("service config %+v", svc.Cfg)
	}
	if len(svc.Dests) != 2 || svc.Dests[0].Weight != 1 || svc.Dests[1].Weight != 3 || svc.Dests[0].Port != 8080 {
		t.Errorf("destinations %+v (IPVS order: last added first)", svc.Dests)
	}
	if s.Timeouts != (service.Timeouts{TCP: 600, TCPFin: 60, UDP: 30}) {
		t.Errorf("timeouts %+v", s.Timeouts)
	}
	if !s.Owned[[4]byte{198, 19, 0, 254}] {
		t.Error("the vrrp_instance's address is not owned")
	}
}

// TestSync: a reload changes only what differs; an unchanged server keeps
// its ID (so its connections keep counting) and its service keeps its ID.
func TestSync(t *testing.T) {
	m := service.NewModel()
	if err := Apply(parse(t, base), m); err != nil {
		t.Fatal(err)
	}
	before := m.Snapshot()
	keptID := before.Services[0].DestIDs[1] // 198.19.0.11
	changed := strings.Replace(base, "real_server 198.19.0.12 8080 {\n        weight 1", "real_server 198.19.0.13 8080 {\n        weight 2", 1)
	changed = strings.Replace(changed, "lb_algo wrr", "lb_algo wlc", 1)
	if err := Sync(parse(t, changed), m); err != nil {
		t.Fatal(err)
	}
	after := m.Snapshot()
	svc := after.Services[0]
	if svc.ID != before.Services[0].ID || svc.Cfg.Sched != "wlc" {
		t.Errorf("service %d/%s, want ID %d and wlc", svc.ID, svc.Cfg.Sched, before.Services[0].ID)
	}
	found := map[[4]byte]uint32{}
	for i, d := range svc.Dests {
		found[d.Addr.As4()] = svc.DestIDs[i]
	}
	if id, ok := found[[4]byte{198, 19, 0, 11}]; !ok || id != keptID {
		t.Errorf("unchanged server has ID %d (present %v), want %d", id, ok, keptID)
	}
	if _, ok := found[[4]byte{198, 19, 0, 12}]; ok {
		t.Error("removed server still in the service")
	}
	if _, ok := found[[4]byte{198, 19, 0, 13}]; !ok {
		t.Error("added server missing")
	}
}
