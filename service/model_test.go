package service

import (
	"errors"
	"testing"
)

var key = Key{Proto: 6, Addr: [4]byte{198, 18, 0, 100}, Port: 80}

func addrs(m *Model) [][4]byte {
	s := m.Snapshot()
	var out [][4]byte
	for _, d := range s.Services[0].Dests {
		out = append(out, d.Addr.As4())
	}
	return out
}

func TestModelIPVSListOrder(t *testing.T) {
	m := NewModel()
	if err := m.AddService(ServiceConfig{Key: key, Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	for _, last := range []byte{11, 12, 13} {
		if err := m.AddDest(key, DestConfig{Addr: [4]byte{198, 19, 0, last}, Weight: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// IPVS adds at the head of the list.
	got := addrs(m)
	if got[0][3] != 13 || got[1][3] != 12 || got[2][3] != 11 {
		t.Fatalf("list order %v, want 13 12 11", got)
	}
	if d := m.Snapshot().Services[0].Dests[0]; d.Port != 80 {
		t.Errorf("a destination without a port takes the service's: %d", d.Port)
	}
}

func TestModelTrashReuse(t *testing.T) {
	m := NewModel()
	_ = m.AddService(ServiceConfig{Key: key, Sched: "wlc"})
	rs := DestConfig{Addr: [4]byte{198, 19, 0, 11}, Port: 80, Weight: 1}
	_ = m.AddDest(key, rs)
	id := m.Snapshot().Services[0].DestIDs[0]
	if err := m.DelDest(key, rs.Addr, rs.Port); err != nil {
		t.Fatal(err)
	}
	if s := m.Snapshot(); !s.Dests[id].Removed || len(s.Services[0].Dests) != 0 {
		t.Fatal("deleted destination still listed")
	}
	_ = m.AddDest(key, rs)
	if got := m.Snapshot().Services[0].DestIDs[0]; got != id {
		t.Fatalf("re-added server got ID %d, want its old %d (IPVS's trash)", got, id)
	}
}

func TestModelRefusals(t *testing.T) {
	m := NewModel()
	if err := m.AddService(ServiceConfig{Key: key, Sched: "nosuch"}); err == nil {
		t.Error("unknown scheduler accepted")
	}
	_ = m.AddService(ServiceConfig{Key: key, Sched: "rr"})
	if err := m.AddService(ServiceConfig{Key: key, Sched: "rr"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate service: %v", err)
	}
	err := m.AddDest(key, DestConfig{Addr: [4]byte{1, 2, 3, 4}, Port: 8080, Fwd: FwdRoute})
	if err == nil {
		t.Error("DR with port mapping accepted")
	}
	if err := m.DelService(Key{Proto: 17}); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a missing service: %v", err)
	}
	s := m.Snapshot()
	if _, ok := s.Lookup(6, key.Addr, 80); !ok || !s.IsVIP(key.Addr) || !s.Owned[key.Addr] {
		t.Error("the VIP is not served or not owned")
	}
}

// TestSnapshotMarkOf: a fwmark service's ID gives its mark, an address
// service's and an unknown ID give 0, and a deleted service's mark goes.
func TestSnapshotMarkOf(t *testing.T) {
	m := NewModel()
	fk := Key{FWMark: 7}
	for _, k := range []Key{key, fk} {
		if err := m.AddService(ServiceConfig{Key: k, Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
	}
	s := m.Snapshot()
	addr, mark := s.Services[0].ID, s.Services[1].ID
	if got := s.MarkOf(mark); got != 7 {
		t.Errorf("MarkOf(fwmark service) = %d, want 7", got)
	}
	if got := s.MarkOf(addr); got != 0 {
		t.Errorf("MarkOf(address service) = %d, want 0", got)
	}
	if got := s.MarkOf(mark + 100); got != 0 {
		t.Errorf("MarkOf(unknown ID) = %d, want 0", got)
	}
	if err := m.DelService(fk); err != nil {
		t.Fatal(err)
	}
	if got := m.Snapshot().MarkOf(mark); got != 0 {
		t.Errorf("MarkOf(deleted service) = %d, want 0", got)
	}
}
