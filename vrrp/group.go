package vrrp

import (
	"fmt"
	"time"
)

// Group is a keepalived vrrp_sync_group: its instances change state
// together, so that the two sides of a NAT director (the VIP and the
// servers' gateway) are always mastered by the same box. When one member
// becomes MASTER on its own timer they all do; when one yields to a
// higher-priority master they all go BACKUP; when one fails they all go
// to FAULT, and back to BACKUP once none is failed.
type Group struct {
	name    string
	members []*Instance
}

// NewGroup makes a sync group of members. It panics, as a programming
// error, if a member is already in a group.
func NewGroup(name string, members ...*Instance) *Group {
	g := &Group{name: name, members: append([]*Instance(nil), members...)}
	for _, m := range members {
		if m.group != nil {
			panic(fmt.Sprintf("vrrp: NewGroup(%q): got instance %q in group %q, want at most one group", name, m.cfg.Name, m.group.name))
		}
		m.group = g
	}
	return g
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Members returns the group's instances.
func (g *Group) Members() []*Instance { return append([]*Instance(nil), g.members...) }

// follow moves the started members other than from to state to, from's
// new state. A nil group, an instance outside any, has nothing to move.
func (g *Group) follow(now time.Time, from *Instance, to State, acts *[]Action) {
	if g == nil {
		return
	}
	for _, m := range g.members {
		if m == from {
			continue
		}
		switch to {
		case StateMaster:
			if m.state == StateBackup {
				m.enterMaster(now, acts)
			}
		case StateBackup:
			switch m.state {
			case StateMaster:
				m.enterBackup(now, acts)
			case StateFault:
				if !g.faulted(nil) {
					m.enterBackup(now, acts)
				}
			}
		case StateFault:
			if m.state == StateMaster || m.state == StateBackup {
				m.enterFault(acts)
			}
		}
	}
}

// faulted reports whether i (when not nil) or any member of its group has
// a fault set. For an instance outside a group, only its own counts.
func (g *Group) faulted(i *Instance) bool {
	if i != nil && i.fault {
		return true
	}
	if g == nil {
		return false
	}
	for _, m := range g.members {
		if m.fault {
			return true
		}
	}
	return false
}

// hasMaster reports whether a member other than i is MASTER.
func (g *Group) hasMaster(i *Instance) bool {
	if g == nil {
		return false
	}
	for _, m := range g.members {
		if m != i && m.state == StateMaster {
			return true
		}
	}
	return false
}

// heldUntil returns the latest Master_Down_Timer, after now, of the other
// members in BACKUP: while one of them still hears a master, i must not
// take the group to MASTER. It returns the zero Time when none does.
func (g *Group) heldUntil(i *Instance, now time.Time) time.Time {
	var t time.Time
	if g == nil {
		return t
	}
	for _, m := range g.members {
		if m != i && m.state == StateBackup && m.deadline.After(now) && m.deadline.After(t) {
			t = m.deadline
		}
	}
	return t
}
