package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/service"
)

// zeroModel has two services with two real servers each.
func zeroModel(t *testing.T) (*service.Model, []service.Service) {
	t.Helper()
	m := service.NewModel()
	for _, port := range []uint16{80, 443} {
		k := service.Key{Proto: 6, Addr: [4]byte{198, 18, 0, 100}, Port: port}
		if err := m.AddService(service.ServiceConfig{Key: k, Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
		for _, last := range []byte{11, 12} {
			if err := m.AddDest(k, service.DestConfig{Addr: [4]byte{198, 19, 0, last}, Port: port, Fwd: service.FwdMasq, Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	svcs, _ := m.Services()
	if len(svcs) != 2 || len(svcs[0].Dests) != 2 || len(svcs[1].Dests) != 2 {
		t.Fatalf("services = %+v", svcs)
	}
	return m, svcs
}

func tot(n uint64) dataplane.Totals {
	return dataplane.Totals{Conns: n, InPkts: 10 * n, OutPkts: 9 * n, InBytes: 1000 * n, OutBytes: 900 * n}
}

// ipvsadm -Z -t VIP:PORT zeroes that service's counters and its real
// servers', and leaves every other service's as they were.
func TestZeroOneService(t *testing.T) {
	_, svcs := zeroModel(t)
	web, tls := svcs[0], svcs[1]
	st := map[uint32]dataplane.Totals{web.ID: tot(5), tls.ID: tot(7)}
	dt := map[uint32]dataplane.Totals{web.Dests[0]: tot(2), web.Dests[1]: tot(3), tls.Dests[0]: tot(4), tls.Dests[1]: tot(3)}
	// An earlier -Z of everything, then more traffic.
	oldS := map[uint32]dataplane.Totals{web.ID: tot(1), tls.ID: tot(2)}
	oldD := map[uint32]dataplane.Totals{web.Dests[0]: tot(1), tls.Dests[1]: tot(2)}
	keepS, keepD := maps.Clone(oldS), maps.Clone(oldD)

	k := web.Cfg.Key
	zs, zd, err := zeroed(oldS, oldD, svcs, st, dt, &k)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(oldS, keepS) || !maps.Equal(oldD, keepD) {
		t.Errorf("old baselines changed: %v %v", oldS, oldD)
	}
	shown := func(cur, base map[uint32]dataplane.Totals, id uint32) dataplane.Totals { return sub(cur[id], base[id]) }
	if got := shown(st, zs, web.ID); got != (dataplane.Totals{}) {
		t.Errorf("zeroed service shows %+v", got)
	}
	for _, id := range web.Dests {
		if got := shown(dt, zd, id); got != (dataplane.Totals{}) {
			t.Errorf("zeroed service's dest %d shows %+v", id, got)
		}
	}
	if got, want := shown(st, zs, tls.ID), tot(5); got != want {
		t.Errorf("other service shows %+v, want %+v", got, want)
	}
	if got, want := shown(dt, zd, tls.Dests[0]), tot(4); got != want {
		t.Errorf("other service's dest 0 shows %+v, want %+v", got, want)
	}
	if got, want := shown(dt, zd, tls.Dests[1]), tot(1); got != want {
		t.Errorf("other service's dest 1 shows %+v, want %+v", got, want)
	}

	// Without a service, everything.
	zs, zd, err = zeroed(oldS, oldD, svcs, st, dt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if got := shown(st, zs, s.ID); got != (dataplane.Totals{}) {
			t.Errorf("service %d shows %+v after -Z", s.ID, got)
		}
		for _, id := range s.Dests {
			if got := shown(dt, zd, id); got != (dataplane.Totals{}) {
				t.Errorf("dest %d shows %+v after -Z", id, got)
			}
		}
	}

	// No baseline yet, and a service that never saw traffic.
	zs, zd, err = zeroed(nil, nil, svcs, map[uint32]dataplane.Totals{web.ID: tot(3)}, nil, &tls.Cfg.Key)
	if err != nil || len(zs) != 0 || len(zd) != 0 {
		t.Errorf("zeroing an idle service: %v %v %v", zs, zd, err)
	}

	missing := service.Key{Proto: 17, Addr: [4]byte{198, 18, 0, 100}, Port: 80}
	if _, _, err := zeroed(oldS, oldD, svcs, st, dt, &missing); err != errNoService {
		t.Errorf("unknown service: %v, want %v", err, errNoService)
	}
}

// The request path: -Z with and without a service, and an unknown one
// answered as ipvsadm does. There is no engine, so no traffic.
func TestHandleZero(t *testing.T) {
	m, svcs := zeroModel(t)
	d := &Daemon{model: m}
	other := map[uint32]dataplane.Totals{svcs[1].ID: tot(9)}
	d.zeroSvc = maps.Clone(other)
	ctx := context.Background()
	vip := netip.MustParseAddr("198.18.0.100")
	zero := func(svc *control.Service) string {
		return d.Handle(ctx, &control.Request{Op: control.OpZero, Service: svc}).Err
	}
	if err := zero(&control.Service{Proto: "TCP", Addr: vip, Port: 80}); err != "" {
		t.Fatalf("-Z -t %v:80: %s", vip, err)
	}
	if !maps.Equal(d.zeroSvc, other) {
		t.Errorf("-Z of :80 changed the :443 baseline: %v", d.zeroSvc)
	}
	for _, svc := range []*control.Service{{Proto: "TCP", Addr: vip, Port: 8080}, {FWMark: 3}} {
		if err := zero(svc); err != "No such service" {
			t.Errorf("-Z %+v: %q, want No such service", svc, err)
		}
	}
	if !maps.Equal(d.zeroSvc, other) {
		t.Errorf("a refused -Z changed the baselines: %v", d.zeroSvc)
	}
	if err := zero(nil); err != "" {
		t.Fatalf("-Z: %s", err)
	}
	if len(d.zeroSvc) != 0 || len(d.zeroDest) != 0 {
		t.Errorf("baselines after -Z with no traffic: %v %v", d.zeroSvc, d.zeroDest)
	}
}

// -P, -Q and -G through the request path, answered with the
// LVS-FULLNAT libipvs's messages. There is no engine, so no connection
// counts.
func TestHandleLocalAddrs(t *testing.T) {
	m, _ := zeroModel(t)
	d := &Daemon{model: m}
	ctx := context.Background()
	vip := netip.MustParseAddr("198.18.0.100")
	web := &control.Service{Proto: "TCP", Addr: vip, Port: 80}
	do := func(op string, svc *control.Service, lip string) *control.Response {
		r := &control.Request{Op: op, Service: svc}
		if lip != "" {
			r.LocalAddr = netip.MustParseAddr(lip)
		}
		return d.Handle(ctx, r)
	}
	for _, tc := range []struct {
		op   string
		svc  *control.Service
		lip  string
		want string
	}{
		{control.OpAddLAddr, web, "198.19.0.201", ""},
		{control.OpAddLAddr, web, "198.19.0.200", ""},
		{control.OpAddLAddr, web, "198.19.0.200", "Local address already exists"},
		{control.OpAddLAddr, &control.Service{Proto: "TCP", Addr: vip, Port: 8080}, "198.19.0.200", "Service not defined"},
		{control.OpAddLAddr, web, "", "no local address given"},
		{control.OpAddLAddr, web, "2001:db8::1", "local address 2001:db8::1: only IPv4 is served"},
		{control.OpAddLAddr, web, "127.0.0.1", "local address 127.0.0.1 is not a unicast address"},
		{control.OpAddLAddr, nil, "198.19.0.200", "add-laddr: no service given"},
		{control.OpDelLAddr, web, "198.19.0.9", "No such Local address"},
		{control.OpAddLAddr, web, "198.19.0.202", ""},
		{control.OpDelLAddr, web, "198.19.0.200", ""},
	} {
		if got := do(tc.op, tc.svc, tc.lip).Err; got != tc.want {
			t.Errorf("%s %+v %s: %q, want %q", tc.op, tc.svc, tc.lip, got, tc.want)
		}
	}
	lips := func(s control.Service) (out []string) {
		for _, la := range s.LocalAddrs {
			out = append(out, fmt.Sprintf("%v/%d", la.Addr, la.Conns))
		}
		return out
	}
	resp := do(control.OpGetLAddr, nil, "")
	if resp.Err != "" || len(resp.Services) != 2 {
		t.Fatalf("-G: %+v", resp)
	}
	if got, want := fmt.Sprint(lips(resp.Services[0]), lips(resp.Services[1])), "[198.19.0.201/0 198.19.0.202/0] []"; got != want {
		t.Errorf("-G: %s, want %s", got, want)
	}
	if s := resp.Services[0]; s.Proto != "TCP" || s.Addr != vip || s.Port != 80 || s.Sched != "" || len(s.Dests) != 0 {
		t.Errorf("-G service %+v", s)
	}
	resp = do(control.OpGetLAddr, &control.Service{Proto: "TCP", Addr: vip, Port: 443}, "")
	if resp.Err != "" || len(resp.Services) != 1 || resp.Services[0].Port != 443 || len(resp.Services[0].LocalAddrs) != 0 {
		t.Errorf("-G -t :443: %+v", resp)
	}
	if got := do(control.OpGetLAddr, &control.Service{FWMark: 3}, "").Err; got != "No such service" {
		t.Errorf("-G -f 3: %q, want No such service", got)
	}
	// The model has them in the order they were added.
	svcs, _ := m.Services()
	if got := fmt.Sprint(svcs[0].LocalAddrs); got != "[[198 19 0 201] [198 19 0 202]]" {
		t.Errorf("model's local addresses %s", got)
	}
}
