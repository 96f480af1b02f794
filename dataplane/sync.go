package dataplane

import (
	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/service"
)

// Connection sync, the dataplane's side. On the sync master each worker
// pushes a record into its own lock-free queue when a connection reaches
// a state the backup must know (IPVS's sync daemon sends on the same
// kind of transitions): ESTABLISHED, the closing states, and UDP on its
// first packet. A full queue drops the record and counts it; the worker
// never waits. On the backup, received records reach the owning worker
// through a bounded channel (a handful per new connection, never per
// packet) and are inserted between batches.

// importBudget bounds the synced records a worker inserts per round, so a
// bulk dump never stalls its packets.
const importBudget = 256

// importRec is a received record with what the receiving director knows
// of its own network: the interface its clients are behind.
type importRec struct {
	rec      connsync.Record
	clientIf int32
}

// syncWorthy reports whether moving into TCP state s is sent to the
// backup; UDP connections never change state and go once, when created.
func syncWorthy(s conntrack.State) bool {
	switch s {
	case conntrack.StateEstablished, conntrack.StateFinWait, conntrack.StateCloseWait,
		conntrack.StateTimeWait, conntrack.StateClose, conntrack.StateLastAck:
		return true
	}
	return false
}

// syncOut queues connection c (or persistence template) for the backup.
func (w *worker) syncOut(c *conntrack.Conn) {
	if w.syncQ == nil || !w.syncing {
		return
	}
	r := &w.syncRec
	w.toRecord(r, c, w.now)
	if !w.syncQ.Push(r) {
		w.stats.syncDropped.add(1)
		return
	}
	w.stats.syncOut.add(1)
}

// toRecord turns a tracked connection into its wire record. A
// persistence template goes as protocol 0 with FlagTemplate, its
// service's protocol in State (a template's tuple has no protocol). A
// fwmark service's connection or template carries the mark, the only
// way the backup can find the service: its tuples hold the address the
// client used, or for a template the mark as an address (markVAddr).
func (w *worker) toRecord(r *connsync.Record, c *conntrack.Conn, now int64) {
	*r = connsync.Record{
		Proto: c.Orig.Proto, State: uint8(c.State), Fwd: c.Fwd,
		Flags: c.Flags &^ conntrack.FlagInactive,
		CAddr: c.Orig.Src, CPort: c.Orig.SPort,
		VAddr: c.Orig.Dst, VPort: c.Orig.DPort,
		DAddr: c.Reply.Src, DPort: c.Reply.SPort,
		ClientMAC: c.ClientMAC,
		FWMark:    w.snap.MarkOf(c.Svc),
	}
	if service.Fwd(c.Fwd) == service.FwdFullNat {
		r.LAddr, r.LPort = c.Reply.Dst, c.Reply.DPort
	}
	if left := c.Expires - now; left > 0 {
		r.Timeout = uint32((left + 999_999_999) / 1_000_000_000)
	}
	if c.IsTemplate() {
		r.Proto, r.State, r.CPort = 0, 0, 0
		if int(c.Svc) < len(w.svcProto) {
			r.State = w.svcProto[c.Svc]
		}
	}
}

// importSynced inserts or refreshes the connections the master sent.
func (w *worker) importSynced() {
	for range importBudget {
		select {
		case ir := <-w.importQ:
			w.importOne(&ir)
		default:
			return
		}
	}
}

func (w *worker) importOne(ir *importRec) {
	r := &ir.rec
	if r.Flags&conntrack.FlagTemplate != 0 {
		w.importTemplate(r)
		return
	}
	svc, destID, found := w.recordDest(r, r.Proto)
	if !found {
		return
	}
	d := &w.snap.Dests[destID]
	orig := conntrack.Tuple{Src: r.CAddr, Dst: r.VAddr, SPort: r.CPort, DPort: r.VPort, Proto: r.Proto}
	state := conntrack.State(r.State)
	expires := w.now + w.timeouts.Timeout(state)
	if r.Timeout > 0 {
		expires = w.now + int64(r.Timeout)*1_000_000_000
	}
	active := state == conntrack.StateEstablished
	if id, _, ok := w.ct.Lookup(&orig); ok {
		c := w.ct.Get(id)
		if c.IsTemplate() {
			return
		}
		was := !c.Inactive()
		c.State, c.Expires = state, expires
		if active {
			c.Flags &^= conntrack.FlagInactive
		} else {
			c.Flags |= conntrack.FlagInactive
		}
		if was != active {
			w.moveCount(c.Dest, active)
		}
		w.stats.syncIn.add(1)
		return
	}
	c := conntrack.Conn{
		Orig:      orig,
		Reply:     conntrack.Tuple{Src: r.DAddr, Dst: r.CAddr, SPort: r.DPort, DPort: r.CPort, Proto: r.Proto},
		Svc:       svc.ID,
		Dest:      destID,
		Fwd:       uint8(d.Fwd),
		ClientMAC: r.ClientMAC,
		ClientIf:  ir.clientIf,
		DestMAC:   d.NextHop.MAC,
		DestIf:    d.NextHop.Ifindex,
		State:     state,
		Flags:     (r.Flags & conntrack.FlagNoOutput) | conntrack.FlagSynced,
		Expires:   expires,
	}
	if r.FWMark != 0 {
		// Taken from the service rather than from r.Flags: the flag
		// decides which copy of a packet is acted on (marks.go), so it
		// must agree with the service the connection was placed in.
		c.Flags |= conntrack.FlagFwmark
	}
	if d.Fwd == service.FwdFullNat {
		c.Reply.Dst, c.Reply.DPort = r.LAddr, r.LPort
	}
	if d.NextHop.Local {
		// The master sent it to us as a real server: from now on
		// our own stack serves it.
		c.Fwd = uint8(service.FwdLocal)
		c.Flags |= conntrack.FlagNoOutput
	}
	if !active {
		c.Flags |= conntrack.FlagInactive
	}
	if _, err := w.ct.Insert(&c); err != nil {
		w.stats.syncRefused.add(1)
		return
	}
	if active {
		d.Conns.Active.Add(1)
	} else {
		d.Conns.Inactive.Add(1)
	}
	w.stats.syncIn.add(1)
}

// learnClient completes a synced connection with what its first packet
// from the client says: the backup knew the client's MAC from the master,
// but the interface index and a next hop that moved are its own.
func (w *worker) learnClient(c *conntrack.Conn, p *port, src [6]byte) {
	c.ClientMAC = src
	c.ClientIf = int32(p.ifindex)
	c.Flags &^= conntrack.FlagSynced
}

// importTemplate inserts or re-arms a persistence template from the
// master, so that after a failover the client network still goes to its
// real server.
func (w *worker) importTemplate(r *connsync.Record) {
	svc, destID, found := w.recordDest(r, r.State)
	if !found {
		return
	}
	if !svc.Cfg.Persistent {
		w.stats.syncNoService.add(1)
		return
	}
	k := conntrack.Tuple{Src: r.CAddr, Dst: r.VAddr, DPort: r.VPort}
	expires := w.now + int64(r.Timeout)*1_000_000_000
	if id, _, ok := w.ct.Lookup(&k); ok {
		t := w.ct.Get(id)
		if t.IsTemplate() && t.Dest == destID {
			t.Expires = expires
			w.stats.syncIn.add(1)
			return
		}
		// The master moved the client network: forget ours.
		if t.IsTemplate() && int(t.Dest) < len(w.snap.Dests) {
			w.snap.Dests[t.Dest].Conns.Persist.Add(-1)
		}
		w.ct.Delete(id)
	}
	d := &w.snap.Dests[destID]
	t := templateConn(svc, k, d, destID, expires)
	if _, err := w.ct.Insert(&t); err != nil {
		w.stats.syncRefused.add(1)
		return
	}
	d.Conns.Persist.Add(1)
	w.stats.syncIn.add(1)
}

// recordDest finds a record's service (by its mark, else by protocol
// proto and its address) and destination here, counting a record this
// director cannot place.
func (w *worker) recordDest(r *connsync.Record, proto uint8) (*service.SvcSnap, uint32, bool) {
	var si int
	var ok bool
	switch {
	case r.FWMark != 0:
		si, ok = w.snap.LookupMark(r.FWMark)
	case r.Flags&conntrack.FlagFwmark != 0:
		// A fwmark connection whose service the master no longer had:
		// looked up by address, it could land in an address service
		// on the same endpoint.
	default:
		si, ok = w.snap.Lookup(proto, r.VAddr, r.VPort)
	}
	if !ok {
		w.stats.syncNoService.add(1)
		return nil, 0, false
	}
	svc := &w.snap.Services[si]
	destID, found := w.findDest(svc, r.DAddr, r.DPort)
	if !found {
		w.stats.syncNoService.add(1)
	}
	return svc, destID, found
}

// findDest finds a service's destination by address and port. A fwmark
// service's server without a port took the packet's (l4), so its
// connections' port is not the configured 0: such a server matches by
// address, after any server configured with that very port.
func (w *worker) findDest(svc *service.SvcSnap, addr [4]byte, port uint16) (uint32, bool) {
	anyPort, found := uint32(0), false
	for k, id := range svc.DestIDs {
		d := &svc.Dests[k]
		if d.Addr.As4() != addr {
			continue
		}
		if d.Port == port {
			return id, true
		}
		if d.Port == 0 && svc.Cfg.Key.FWMark != 0 && !found {
			anyPort, found = id, true
		}
	}
	return anyPort, found
}
