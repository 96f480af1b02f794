package service

import "testing"

// TestStandbyAndVMAC: a standby address is not owned and its service is
// marked; releasing it restores both; virtual MACs are listed once.
func TestStandbyAndVMAC(t *testing.T) {
	m := NewModel()
	vip := [4]byte{198, 18, 0, 100}
	gw := [4]byte{198, 19, 0, 254}
	key := Key{Proto: 6, Addr: vip, Port: 80}
	if err := m.AddService(ServiceConfig{Key: key, Sched: "rr"}); err != nil {
		t.Fatal(err)
	}
	m.SetOwned([][4]byte{gw})
	g0 := m.Snapshot().Gen
	m.SetStandby([][4]byte{vip, gw}, true)
	s := m.Snapshot()
	if s.Owned[vip] || s.Owned[gw] || !s.Standby[vip] || !s.Services[0].Standby {
		t.Fatalf("standby: owned %v, standby %v, service standby %v", s.Owned, s.Standby, s.Services[0].Standby)
	}
	m.SetStandby([][4]byte{vip, gw}, true)
	if m.Snapshot().Gen != s.Gen {
		t.Error("an unchanged standby set published a new snapshot")
	}
	m.SetStandby([][4]byte{vip, gw}, false)
	s = m.Snapshot()
	if !s.Owned[vip] || !s.Owned[gw] || s.Services[0].Standby || s.Gen <= g0 {
		t.Fatalf("active again: owned %v, service standby %v", s.Owned, s.Services[0].Standby)
	}
	vm := [6]byte{0, 0, 0x5e, 0, 1, 51}
	m.SetVMAC([][4]byte{vip, gw}, vm)
	s = m.Snapshot()
	if len(s.VMACList) != 1 || !s.IsVMAC(vm) || s.VMACs[gw] != vm || s.IsVMAC([6]byte{1}) {
		t.Fatalf("vmacs %v %v", s.VMACs, s.VMACList)
	}
	m.SetPeerMACs([][6]byte{{2, 0, 0, 0, 0, 1}})
	if !m.Snapshot().IsPeer([6]byte{2, 0, 0, 0, 0, 1}) {
		t.Fatal("peer MAC not in the snapshot")
	}
}
