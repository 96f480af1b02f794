package daemon

import (
	"errors"
	"fmt"
	"strings"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/service"
)

// desired is what a configuration asks for, in model terms.
type desired struct {
	svcs     []service.ServiceConfig
	lips     map[service.Key][][4]byte
	dests    map[service.Key][]service.DestConfig
	owned    [][4]byte
	timeouts service.Timeouts
}

func lbKind(kind string) (service.Fwd, error) {
	switch strings.ToUpper(kind) {
	case "", "NAT":
		return service.FwdMasq, nil
	case "DR":
		return service.FwdRoute, nil
	case "TUN":
		return service.FwdTunnel, nil
	case "FNAT", "FULLNAT":
		return service.FwdFullNat, nil
	}
	return 0, fmt.Errorf("lb_kind %q unknown", kind)
}

// translate turns a parsed keepalived.conf into model terms, with the
// position of whatever it refuses.
func translate(cfg *config.Config) (*desired, error) {
	d := &desired{dests: map[service.Key][]service.DestConfig{}, lips: map[service.Key][][4]byte{}, timeouts: service.DefaultTimeouts}
	t := cfg.Global.LVSTimeouts
	if t.TCP != 0 {
		d.timeouts.TCP = t.TCP
	}
	if t.TCPFin != 0 {
		d.timeouts.TCPFin = t.TCPFin
	}
	if t.UDP != 0 {
		d.timeouts.UDP = t.UDP
	}
	for _, es := range cfg.ExpandedServices() {
		vs := es.VS
		where := vs.Pos.String()
		sc, err := expandedConfig(es)
		if err != nil {
			return nil, fmt.Errorf("%s: virtual_server: %w", where, err)
		}
		d.svcs = append(d.svcs, sc)
		for _, a := range cfg.LocalAddressGroups[vs.LAddrGroup] {
			d.lips[sc.Key] = append(d.lips[sc.Key], a.As4())
		}
		for _, rs := range vs.RealServers {
			kind := vs.LBKind
			if rs.LBKind != "" {
				kind = rs.LBKind
			}
			fwd, err := lbKind(kind)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rs.Pos, err)
			}
			if !rs.Addr.Is4() {
				return nil, fmt.Errorf("%s: real_server %v: only IPv4 is served", rs.Pos, rs.Addr)
			}
			if err := implemented(fwd); err != nil {
				return nil, fmt.Errorf("%s: %w", rs.Pos, err)
			}
			if fwd == service.FwdFullNat && len(d.lips[sc.Key]) == 0 {
				return nil, fmt.Errorf("%s: lb_kind FNAT needs local addresses: laddr_group_name with a local_address_group", vs.Pos)
			}
			port := rs.Port
			if port == 0 {
				port = es.Port
			}
			d.dests[sc.Key] = append(d.dests[sc.Key], service.DestConfig{
				Addr: rs.Addr.As4(), Port: port, Fwd: fwd, Weight: rs.Weight,
				UThreshold: rs.UThreshold, LThreshold: rs.LThreshold,
			})
		}
	}
	for _, vi := range cfg.VRRPInstances {
		// Until VRRP runs, every instance's addresses are owned (as if
		// MASTER): floating gateways of the two-armed NAT setup.
		for _, p := range vi.VirtualIPAddresses {
			if a := p.Addr(); a.Is4() {
				d.owned = append(d.owned, a.As4())
			}
		}
	}
	return d, nil
}

// Apply loads a configuration into an empty model.
func Apply(cfg *config.Config, m *service.Model) error {
	d, err := translate(cfg)
	if err != nil {
		return err
	}
	m.SetTimeouts(d.timeouts)
	m.SetOwned(d.owned)
	for _, sc := range d.svcs {
		if err := m.AddService(sc); err != nil {
			return err
		}
		if err := m.SetLocalAddrs(sc.Key, d.lips[sc.Key]); err != nil {
			return err
		}
		for _, dc := range d.dests[sc.Key] {
			if err := m.AddDest(sc.Key, dc); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sync changes a running model into what cfg asks for, touching only
// what differs, so established connections to unchanged servers go on.
func Sync(cfg *config.Config, m *service.Model) error {
	d, err := translate(cfg)
	if err != nil {
		return err
	}
	m.SetTimeouts(d.timeouts)
	m.SetOwned(d.owned)
	have, dests := m.Services()
	want := map[service.Key]service.ServiceConfig{}
	for _, sc := range d.svcs {
		want[sc.Key] = sc
	}
	var errs []error
	for _, s := range have {
		if _, ok := want[s.Cfg.Key]; !ok {
			errs = append(errs, m.DelService(s.Cfg.Key))
		}
	}
	haveBy := map[service.Key]service.Service{}
	for _, s := range have {
		haveBy[s.Cfg.Key] = s
	}
	for _, sc := range d.svcs {
		old, ok := haveBy[sc.Key]
		switch {
		case !ok:
			errs = append(errs, m.AddService(sc))
		case old.Cfg != sc:
			errs = append(errs, m.EditService(sc))
		}
		errs = append(errs, m.SetLocalAddrs(sc.Key, d.lips[sc.Key]))
		cur := map[[6]byte]service.DestConfig{}
		if ok {
			for _, id := range old.Dests {
				c := dests[id].Cfg
				cur[destKey(c)] = c
			}
		}
		wantD := map[[6]byte]bool{}
		for _, dc := range d.dests[sc.Key] {
			wantD[destKey(dc)] = true
			if c, ok := cur[destKey(dc)]; !ok {
				errs = append(errs, m.AddDest(sc.Key, dc))
			} else if c != dc {
				errs = append(errs, m.EditDest(sc.Key, dc))
			}
		}
		for k, c := range cur {
			if !wantD[k] {
				errs = append(errs, m.DelDest(sc.Key, c.Addr, c.Port))
			}
		}
	}
	return errors.Join(errs...)
}

func destKey(c service.DestConfig) [6]byte {
	return [6]byte{c.Addr[0], c.Addr[1], c.Addr[2], c.Addr[3], byte(c.Port >> 8), byte(c.Port)}
}

// implemented refuses the forwarding methods the dataplane cannot do yet.
func implemented(f service.Fwd) error {
	switch f {
	case service.FwdMasq, service.FwdRoute, service.FwdTunnel, service.FwdFullNat:
		return nil
	}
	return fmt.Errorf("forwarding method %v is not implemented", f)
}

// expandedConfig is the model's form of one expanded virtual service.
func expandedConfig(es config.Expanded) (service.ServiceConfig, error) {
	vs := es.VS
	cs := control.Service{Proto: vs.Protocol, Addr: es.Addr, Port: es.Port, FWMark: es.FWMark, Sched: vs.LBAlgo, SchedFlags: vs.SchedFlags}
	if vs.PersistenceTimeout > 0 {
		cs.Persistent, cs.Timeout = true, vs.PersistenceTimeout
		cs.Netmask = vs.PersistenceGranularityBits()
	}
	return svcConfig(&cs)
}
