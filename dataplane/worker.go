package dataplane

import (
	"context"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/modes"
	"github.com/uvs-project/uvs/sched"
	"github.com/uvs-project/uvs/service"
)

// epoch anchors the workers' monotonic clock.
var epoch = time.Now()

func monotime() int64 { return int64(time.Since(epoch)) }

// reapBudget is how many table entries the incremental reaper looks at per
// batch; the whole table is covered every capacity/reapBudget batches.
const reapBudget = 256

// idleReapBudget is the reaper's slice when a round found no traffic.
const idleReapBudget = 1 << 16

// schedState is a worker's scheduler for one service. Schedulers keep
// state (rr position, wrr current weight), so each worker owns its own,
// kept across snapshots while the service's scheduler does not change.
type schedState struct {
	name  string
	flags sched.Flags
	s     sched.Scheduler
	dests []sched.Dest // the worker's copy of the service's destinations
	// shared, when set, is the service's scheduler shared by all
	// workers (stateful schedulers with more than one worker).
	shared *sharedSched
}

// worker owns a set of ports (one per interface), a connection table and
// counters. All of its methods run on its own locked OS thread.
type worker struct {
	id    int
	log   *slog.Logger
	model *service.Model
	ports []*port
	pfds  []unix.PollFd
	batch int

	ct       *conntrack.Table
	snap     *service.Snapshot
	scheds   []schedState // parallel to snap.Services
	bySvcID  map[uint32]*schedState
	timeouts conntrack.Timeouts

	stats workerStats
	svcC  []ipvsCounters
	destC []ipvsCounters

	reqs     chan func(*worker)
	now      int64
	nworkers int
	sp       sched.Packet
	// spin is how long (ns) the worker keeps checking its rings after
	// the last packet before it sleeps in poll; lastBusy is when it last
	// saw one.
	spin     int64
	lastBusy int64

	// head is the current frame with its headroom (nil in tests).
	head []byte
	// TUN mode's segmentation state.
	arena      arena
	segScratch []byte
	tunQ       *port
	tunConn    *conntrack.Conn
	tunSrc     [4]byte
	ipID       uint16
	// FULLNAT local endpoint cursors.
	lipNext   int
	lportNext uint16
	// lportFull is when a search last found no free local port.
	lportFull int64
	// pairFull is, by destination ID × lipStride + local address index,
	// when a search for that pair last failed; lportMisses counts the
	// failed searches.
	pairFull    []int64
	lipStride   int
	lportMisses uint64

	// standby is, by service ID, whether the service's VRRP instance is
	// not MASTER here.
	standby []bool
	// svcProto is, by service ID, the service's protocol (for syncing
	// persistence templates, whose tuple has none).
	svcProto []uint8
	// Connection sync: sync is the engine's switch, read once a round
	// into syncing; syncQ carries changes to the backup, importQ brings
	// the master's.
	sync    *atomic.Bool
	syncing bool
	syncQ   *connsync.Queue
	syncRec connsync.Record
	importQ chan importRec

	// host takes connections to this host as a real server.
	host HostStack
	// steer is the steering the fanout program applies, for the owner
	// checks.
	steer steering
	// shared holds the schedulers shared by the workers (nil: one
	// worker, or tests).
	shared *sharedScheds
	// marks brings packets netfilter marked for fwmark services; mark
	// is the current packet's (0: it came from a ring).
	marks *markRing
	mark  uint32
}

func (w *worker) portByIf(ifindex int32) *port {
	for _, p := range w.ports {
		if int32(p.ifindex) == ifindex {
			return p
		}
	}
	return nil
}

// adopt switches the worker to a new snapshot: schedulers are kept per
// service ID when their name and flags did not change, and told the new
// destination list.
func (w *worker) adopt(s *service.Snapshot) {
	old := w.bySvcID
	w.bySvcID = make(map[uint32]*schedState, len(s.Services))
	w.scheds = make([]schedState, len(s.Services))
	maxSvc := uint32(0)
	for i := range s.Services {
		svc := &s.Services[i]
		st := &w.scheds[i]
		if o, ok := old[svc.ID]; ok && o.name == svc.Cfg.Sched && o.flags == svc.SchedFlags {
			*st = *o
		} else {
			sc, err := sched.New(svc.Cfg.Sched, svc.SchedFlags)
			if err != nil {
				// The model validated the name; a failure here is a bug.
				panic("dataplane: scheduler " + svc.Cfg.Sched + ": " + err.Error())
			}
			*st = schedState{name: svc.Cfg.Sched, flags: svc.SchedFlags, s: sc}
		}
		st.dests = append([]sched.Dest(nil), svc.Dests...)
		st.s.Update(st.dests)
		st.shared = nil
		if w.shared != nil && w.nworkers > 1 && statefulSched(svc.Cfg.Sched) {
			st.shared = w.shared.get(svc.ID, svc.Cfg.Sched, svc.SchedFlags)
		}
		w.bySvcID[svc.ID] = st
		maxSvc = max(maxSvc, svc.ID)
	}
	w.standby = make([]bool, int(maxSvc)+1)
	w.svcProto = make([]uint8, int(maxSvc)+1)
	for i := range s.Services {
		w.standby[s.Services[i].ID] = s.Services[i].Standby
		w.svcProto[s.Services[i].ID] = s.Services[i].Cfg.Key.Proto
	}
	w.svcC = grow(&w.stats.svc, int(maxSvc)+1)
	w.destC = grow(&w.stats.dest, len(s.Dests))
	w.steer = steeringOf(s)
	w.lipStride = 0
	for i := range s.Services {
		w.lipStride = max(w.lipStride, len(s.Services[i].LocalAddrs))
	}
	// The pairs' failures are forgotten with the snapshot: at worst one
	// more search each.
	w.pairFull = nil
	if w.lipStride > 0 {
		w.pairFull = make([]int64, len(s.Dests)*w.lipStride)
	}
	w.timeouts = conntrack.DefaultTimeouts()
	w.timeouts.SetIPVSADM(s.Timeouts.TCP, s.Timeouts.TCPFin, s.Timeouts.UDP)
	w.snap = s
}

func (w *worker) run(ctx context.Context) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for ctx.Err() == nil {
		if s := w.model.Snapshot(); s != w.snap {
			w.adopt(s)
		}
		w.now = monotime()
		if w.sync != nil {
			w.syncing = w.sync.Load()
		}
		if w.importQ != nil {
			w.importSynced()
		}
		n := 0
		if w.marks != nil {
			n = w.drainMarks()
		}
		for _, p := range w.ports {
			if p.xsk != nil {
				// Each source gets its batch, so that a busy XDP
				// socket cannot starve the ring's ARP.
				for k := 0; k < w.batch; k++ {
					f, ok := p.xsk.next()
					if !ok {
						break
					}
					w.handle(p, f)
					n++
				}
			}
			for k := 0; k < w.batch; k++ {
				f, ok := p.next()
				if !ok {
					break
				}
				w.handle(p, f)
				n++
			}
		}
		w.flushAll()
		for _, p := range w.ports {
			p.releaseHeld()
		}
		if w.marks != nil {
			w.marks.release()
		}
		w.stats.rxFrames.add(uint64(n))
		w.ct.Reap(w.now, reapBudget, w.expire)
		select {
		case fn := <-w.reqs:
			fn(w)
		default:
		}
		if n > 0 {
			w.lastBusy = w.now
		}
		if n == 0 && w.spin > 0 && w.now-w.lastBusy < w.spin {
			// Traffic a moment ago: look at the rings again rather
			// than pay a poll and a wake-up for the next packet.
			continue
		}
		if n == 0 {
			// Wake at least every 20 ms for the reaper, snapshots and
			// requests. EINTR is harmless. Only a poll that saw no
			// traffic for its whole timeout earns the large sweep:
			// sweeping whenever the ring is momentarily empty would
			// put a millisecond in front of every packet of a
			// moderate load.
			k, _ := unix.Poll(w.pfds, 20)
			if k == 0 {
				w.ct.Reap(monotime(), idleReapBudget, w.expire)
			}
			if w.marks != nil && w.pfds[len(w.pfds)-1].Revents != 0 {
				var v [8]byte
				unix.Read(w.marks.wake, v[:])
			}
		}
	}
}

// expire is called by the reaper for each connection it removes.
func (w *worker) expire(_ uint32, c *conntrack.Conn) {
	if int(c.Dest) >= len(w.snap.Dests) || c.IsReserved() {
		return
	}
	cc := w.snap.Dests[c.Dest].Conns
	if c.IsTemplate() {
		cc.Persist.Add(-1)
		return
	}
	if c.Inactive() {
		cc.Inactive.Add(-1)
	} else {
		cc.Active.Add(-1)
	}
}

func (w *worker) drop(r dropReason) { w.stats.drops[r].add(1) }

// handle looks at one received frame and either queues it (rewritten in
// place) for transmit, or leaves it.
func (w *worker) handle(p *port, f rxFrame) {
	if f.truncated || len(f.buf) < vnetHdrLen+header.EthernetMinimumSize {
		w.drop(dropTruncated)
		return
	}
	frame := f.buf[vnetHdrLen:]
	w.head = f.head
	eth := header.Ethernet(frame)
	if eth.Dst() != p.mac && eth.Type() != header.EtherTypeARP && !w.snap.IsVMAC(eth.Dst()) {
		// Not addressed to us: another host's unicast, or multicast
		// that the control plane reads on its own sockets.
		w.stats.ignored.add(1)
		return
	}
	if f.vlan {
		w.drop(dropVLAN)
		return
	}
	switch eth.Type() {
	case header.EtherTypeARP:
		w.arp(p, f.buf)
	case header.EtherTypeIPv4:
		w.ipv4(p, f.buf)
	default:
		w.stats.ignored.add(1)
	}
}

// arp answers requests for the addresses uvs owns, so the kernel never has
// to own them.
func (w *worker) arp(p *port, buf []byte) {
	frame := buf[vnetHdrLen:]
	a := header.ARP(frame[header.EthernetMinimumSize:])
	if !a.IsValid() || a.Op() != header.ARPRequest {
		w.stats.ignored.add(1)
		return
	}
	target := a.TargetIP()
	if !w.snap.Owned[target] {
		w.stats.ignored.add(1)
		return
	}
	mac := p.mac
	if vm, ok := w.snap.VMACs[target]; ok {
		mac = vm // use_vmac: the address moves with its MAC
	}
	eth := header.Ethernet(frame)
	eth.SetDst(a.SenderMAC())
	eth.SetSrc(mac)
	a.SetOp(header.ARPReply)
	a.SetTargetMAC(a.SenderMAC())
	a.SetTargetIP(a.SenderIP())
	a.SetSenderMAC(mac)
	a.SetSenderIP(target)
	clearVnet(buf)
	w.stats.arpReplies.add(1)
	w.send(p, buf)
}

func clearVnet(buf []byte) { clear(buf[:vnetHdrLen]) }

func (w *worker) send(p *port, buf []byte) {
	sent, dropped := p.queue(buf)
	w.stats.txFrames.add(uint64(sent))
	w.stats.drops[dropTx].add(uint64(dropped))
}

func (w *worker) ipv4(p *port, buf []byte) {
	frame := buf[vnetHdrLen:]
	ipb := frame[header.EthernetMinimumSize:]
	ip := header.IPv4(ipb)
	if !ip.IsValid(len(ipb)) || header.Checksum(ipb[:ip.HeaderLength()], 0) != 0xffff {
		// The kernel's ip_rcv drops a bad header checksum before IPVS
		// sees it; the header checksum is never offloaded.
		w.drop(dropBadIPv4)
		return
	}
	dst := ip.Dst()
	// Whether uvs owns the destination matters only off the fast path
	// (drop accounting, echo): a tracked connection never looks it up.
	owned := func() bool { return w.snap.Owned[dst] }
	mode := modes.CsumFull
	if header.VirtioNetHdr(buf[:vnetHdrLen]).Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
		mode = modes.CsumPartial
	}
	proto := ip.Protocol()
	if ip.IsFragment() {
		if w.mark != 0 {
			w.stats.markDup.add(1)
		} else if owned() {
			w.drop(dropFragment)
		} else {
			w.stats.ignored.add(1)
		}
		return
	}
	switch proto {
	case header.ProtoTCP, header.ProtoUDP:
		w.l4(p, buf, ip, mode)
	case header.ProtoICMP:
		if w.mark != 0 {
			w.stats.markDup.add(1) // the ring's copy is answered
			return
		}
		w.icmp(p, buf, ip, owned())
	default:
		if w.mark != 0 {
			w.stats.markDup.add(1)
		} else if owned() {
			w.drop(dropUnknownProto)
		} else {
			w.stats.ignored.add(1)
		}
	}
}

// l4 handles TCP and UDP: an existing connection in either direction, or
// a new one to a virtual service.
func (w *worker) l4(p *port, buf []byte, ip header.IPv4, mode modes.CsumMode) {
	l4 := ip.Payload()
	proto := ip.Protocol()
	var sport, dport uint16
	var tcpFlags uint8
	if proto == header.ProtoTCP {
		t := header.TCP(l4)
		if !t.IsValid(len(l4)) {
			w.drop(dropBadL4)
			return
		}
		sport, dport, tcpFlags = t.SrcPort(), t.DstPort(), t.Flags()
	} else {
		if len(l4) < header.UDPSize {
			w.drop(dropBadL4)
			return
		}
		u := header.UDP(l4)
		sport, dport = u.SrcPort(), u.DstPort()
	}
	if w.mark != 0 && !queuedByMark(proto, tcpFlags) {
		// Only openers and UDP are the queue's: whatever queued this
		// one, its ring copy is acted on.
		w.stats.markDup.add(1)
		return
	}
	tuple := conntrack.Tuple{Src: ip.Src(), Dst: ip.Dst(), SPort: sport, DPort: dport, Proto: proto}
	if id, dir, ok := w.ct.Lookup(&tuple); ok {
		if w.nworkers > 1 {
			w.checkOwner(&tuple, dir)
		}
		c := w.ct.Get(id)
		if c.IsReserved() {
			// A late packet of the connection the reservation
			// replaced: nobody is left to take it.
			w.drop(dropNoConn)
			return
		}
		if fw := c.Flags&conntrack.FlagFwmark != 0 && dir == conntrack.DirOrig; fw != (w.mark != 0) {
			// Each packet is acted on once, from the ring or from
			// the queue (marks.go).
			if w.mark != 0 {
				w.stats.markDup.add(1)
				return
			}
			if queuedByMark(proto, tcpFlags) {
				w.stats.markDeferred.add(1)
				return
			}
		}
		if !(dir == conntrack.DirOrig && w.reuse(id, proto, tcpFlags)) {
			w.forward(p, buf, ip, mode, id, dir, tcpFlags)
			return
		}
		// The old connection is gone: schedule this SYN afresh.
	}
	if w.nworkers > 1 {
		w.checkOwner(&tuple, conntrack.DirOrig)
	}
	var si int
	var ok bool
	if w.mark != 0 {
		if si, ok = w.snap.LookupMark(w.mark); !ok {
			// No such service (any more): the ring copy was the one.
			w.stats.markDup.add(1)
			return
		}
		if w.snap.Standby[tuple.Dst] {
			w.drop(dropStandby)
			return
		}
	} else if si, ok = w.snap.Lookup(proto, tuple.Dst, dport); !ok {
		switch {
		case w.deferToMarks(proto, tcpFlags):
			w.stats.markDeferred.add(1)
		case w.snap.Owned[tuple.Dst]:
			w.drop(dropNoService)
		default:
			w.stats.ignored.add(1)
		}
		return
	}
	if ip.HeaderLength() != header.IPv4MinimumSize {
		// IPVS serves packets with options, but rewriting them safely
		// (source routes) is not worth it for a director; refuse.
		w.drop(dropIPOptions)
		return
	}
	// Only a SYN opens a TCP connection (IPVS without sloppy_tcp).
	if proto == header.ProtoTCP && tcpFlags&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst) != header.TCPFlagSyn {
		w.drop(dropNoConn)
		return
	}
	svc := &w.snap.Services[si]
	eth := header.Ethernet(buf[vnetHdrLen:])
	if len(w.snap.PeerMACs) > 0 && w.snap.IsPeer(eth.Src()) {
		// Another director scheduled this packet to us as a real
		// server: our host serves it, we must not schedule it again.
		w.stats.fromPeer.add(1)
		return
	}
	if svc.Standby {
		w.drop(dropStandby)
		return
	}
	st := &w.scheds[si]
	// The packet lives in the worker: passed through the Scheduler
	// interface, a local would escape to the heap.
	w.sp = sched.Packet{
		Proto: proto,
		Src:   netip.AddrPortFrom(netip.AddrFrom4(tuple.Src), sport),
		Dst:   netip.AddrPortFrom(netip.AddrFrom4(tuple.Dst), dport),
		Now:   w.now,
	}
	vaddr, vport := tuple.Dst, dport
	if w.mark != 0 {
		vaddr, vport = markVAddr(svc), 0
	}
	tpl, destID, ok := w.persist(svc, tuple.Src, vaddr, vport)
	if !ok {
		if st.shared != nil {
			destID, ok = st.shared.pick(w.snap, svc, &w.sp)
			if ok && (int(destID) >= len(w.snap.Dests) || w.snap.Dests[destID].Removed) {
				ok = false // a destination of a list this worker has not seen yet
			}
		} else if di := st.s.Schedule(st.dests, &w.sp); di >= 0 {
			destID, ok = svc.DestIDs[di], true
		}
		if !ok {
			w.drop(dropNoDest)
			return
		}
	}
	d := &w.snap.Dests[destID]
	if !d.NextHop.Valid {
		w.drop(dropNoNextHop)
		return
	}
	rport := d.Port
	if rport == 0 {
		// A fwmark service's server without a port takes the packet's
		// (IPVS: dest->port ? dest->port : vport).
		rport = dport
	}
	c := conntrack.Conn{
		Orig:      tuple,
		Reply:     conntrack.Tuple{Src: d.Addr, Dst: tuple.Src, SPort: rport, DPort: sport, Proto: proto},
		Svc:       svc.ID,
		Dest:      destID,
		Fwd:       uint8(d.Fwd),
		ClientMAC: eth.Src(),
		ClientIf:  int32(p.ifindex),
		DestMAC:   d.NextHop.MAC,
		DestIf:    d.NextHop.Ifindex,
	}
	if d.Fwd == service.FwdFullNat {
		lip, lport, ok := w.localPort(svc, destID, d, proto)
		if !ok {
			w.drop(dropNoLocalPort)
			return
		}
		c.Reply.Dst, c.Reply.DPort = lip, lport
	}
	if d.NextHop.Local {
		c.Fwd = uint8(service.FwdLocal)
	}
	if d.Fwd == service.FwdRoute || d.Fwd == service.FwdTunnel || d.NextHop.Local {
		// The server answers the client directly: the director sees
		// one side, and IPVS uses its INPUT-ONLY state table.
		c.Flags |= conntrack.FlagNoOutput
	}
	if w.mark != 0 {
		c.Flags |= conntrack.FlagFwmark
	}
	c.Init(w.now, &w.timeouts)
	id, err := w.ct.Insert(&c)
	if err != nil {
		if err == conntrack.ErrFull {
			w.drop(dropTableFull)
		} else {
			w.drop(dropTupleClash)
		}
		return
	}
	// IPVS binds a new connection as inactive (IP_VS_CONN_F_INACTIVE).
	d.Conns.Inactive.Add(1)
	if svc.Cfg.Persistent {
		w.template(id, tpl, svc, destID, tuple.Src, vaddr, vport)
	}
	w.svcC[svc.ID].conns.add(1)
	w.destC[destID].conns.add(1)
	w.forward(p, buf, ip, mode, id, conntrack.DirOrig, tcpFlags)
	if proto == header.ProtoUDP && svc.SchedFlags&sched.FlagOnePacket != 0 {
		// ops: IPVS never hashes a one-packet connection, so every
		// datagram is scheduled on its own and nothing stays to match
		// (or translate) a reply.
		if w.ct.Live(id) {
			w.expire(id, w.ct.Get(id))
			w.ct.Delete(id)
		}
		return
	}
	if proto == header.ProtoUDP {
		w.syncOut(w.ct.Get(id))
	}
}

// icmp answers echo requests to owned addresses and translates ICMP errors
// that quote a tracked connection.
func (w *worker) icmp(p *port, buf []byte, ip header.IPv4, owned bool) {
	ic := header.ICMPv4(ip.Payload())
	if len(ic) < header.ICMPv4MinimumSize {
		if owned {
			w.drop(dropTruncated)
		}
		return
	}
	if ic.Type() == header.ICMPv4Echo && owned {
		modes.EchoReply(header.Ethernet(buf[vnetHdrLen:]), ip)
		clearVnet(buf)
		w.stats.echoReplies.add(1)
		w.send(p, buf)
		return
	}
	if !ic.IsError() {
		w.stats.ignored.add(1)
		return
	}
	inner, innerL4, ok := modes.ICMPErrorQuote(ip)
	if !ok || (inner.Protocol() != header.ProtoTCP && inner.Protocol() != header.ProtoUDP) {
		if owned {
			w.drop(dropICMPNoConn)
		} else {
			w.stats.ignored.add(1)
		}
		return
	}
	// The quote is a packet we sent; its reverse is what we track.
	// TCP and UDP both start with the ports.
	sport, dport := header.UDP(innerL4).SrcPort(), header.UDP(innerL4).DstPort()
	tuple := conntrack.Tuple{Src: inner.Dst(), Dst: inner.Src(), SPort: dport, DPort: sport, Proto: inner.Protocol()}
	id, dir, ok := w.ct.Lookup(&tuple)
	if !ok {
		if owned {
			w.drop(dropICMPNoConn)
		} else {
			w.stats.ignored.add(1)
		}
		return
	}
	c := w.ct.Get(id)
	if int(c.Svc) < len(w.standby) && w.standby[c.Svc] {
		w.drop(dropStandby)
		return
	}
	eth := header.Ethernet(buf[vnetHdrLen:])
	clearVnet(buf)
	w.stats.icmpErrors.add(1)
	if dir == conntrack.DirOrig {
		modes.NATICMPIn(ip, c.Reply.Src, c.Reply.SPort)
		w.out(eth, buf, c.DestIf, c.DestMAC)
		return
	}
	if !w.decTTL(ip) {
		return
	}
	modes.NATICMPOut(ip, c.Orig.Dst, c.Orig.DPort)
	w.out(eth, buf, c.ClientIf, c.ClientMAC)
}

// decTTL does what the kernel's forward path does before IPVS sees a
// reply: drop at TTL 1, else decrement.
func (w *worker) decTTL(ip header.IPv4) bool {
	if ip.TTL() <= 1 {
		w.drop(dropTTL)
		return false
	}
	ip.DecTTLWithChecksumUpdate()
	return true
}

// out rewrites the Ethernet header for the egress port and queues the
// frame there.
func (w *worker) out(eth header.Ethernet, buf []byte, ifindex int32, mac [6]byte) {
	q := w.portByIf(ifindex)
	if q == nil {
		w.drop(dropNoNextHop)
		return
	}
	eth.SetSrc(q.mac)
	eth.SetDst(mac)
	w.send(q, buf)
}

// forward rewrites a packet of a tracked connection and queues it.
func (w *worker) forward(p *port, buf []byte, ip header.IPv4, mode modes.CsumMode, id uint32, dir conntrack.Dir, tcpFlags uint8) {
	c := w.ct.Get(id)
	if int(c.Svc) < len(w.standby) && w.standby[c.Svc] {
		// A BACKUP never forwards: the MASTER has this connection.
		w.drop(dropStandby)
		return
	}
	eth := header.Ethernet(buf[vnetHdrLen:])
	n := uint64(ip.TotalLength())
	if dir == conntrack.DirOrig {
		if w.snap.Dests[c.Dest].Removed {
			// IPVS's ip_vs_in: the server is not available, so the
			// packet is dropped silently and the timer left alone;
			// with expire_nodest_conn the connection goes at once.
			w.drop(dropDestGone)
			if w.snap.ExpireNodestConn {
				w.expire(id, c)
				w.ct.Delete(id)
			}
			return
		}
		if c.Flags&conntrack.FlagSynced != 0 {
			w.learnClient(c, p, eth.Src())
		}
		// Counted and advanced before the rewrite, which neither
		// needs nor changes the connection.
		w.account(c, conntrack.Input, n, tcpFlags)
		switch service.Fwd(c.Fwd) {
		case service.FwdRoute:
			// DR: the IP packet goes on untouched; only the MACs
			// change.
		case service.FwdLocal:
			w.deliverLocal(buf, ip)
			return
		case service.FwdTunnel:
			w.tunnel(p, buf, ip, c)
			return
		case service.FwdFullNat:
			modes.RewriteDst(ip, mode, c.Reply.Src, c.Reply.SPort)
			modes.RewriteSrc(ip, mode, c.Reply.Dst, c.Reply.DPort)
		default:
			modes.NATIn(ip, mode, c.Reply.Src, c.Reply.SPort)
		}
		w.out(eth, buf, c.DestIf, c.DestMAC)
		return
	}
	if !w.decTTL(ip) {
		return
	}
	if service.Fwd(c.Fwd) == service.FwdFullNat {
		modes.RewriteDst(ip, mode, c.Orig.Src, c.Orig.SPort)
	}
	modes.NATOut(ip, mode, c.Orig.Dst, c.Orig.DPort)
	w.account(c, conntrack.Output, n, tcpFlags)
	w.out(eth, buf, c.ClientIf, c.ClientMAC)
}

// account counts a forwarded packet of n bytes in the service's and the
// destination's counters (IPVS's in or out, by dir) and advances the
// connection.
func (w *worker) account(c *conntrack.Conn, dir conntrack.PacketDir, n uint64, tcpFlags uint8) {
	sc, dc := &w.svcC[c.Svc], &w.destC[c.Dest]
	if dir == conntrack.Input {
		sc.inPkts.add(1)
		sc.inBytes.add(n)
		dc.inPkts.add(1)
		dc.inBytes.add(n)
	} else {
		sc.outPkts.add(1)
		sc.outBytes.add(n)
		dc.outPkts.add(1)
		dc.outBytes.add(n)
	}
	w.advance(c, dir, tcpFlags)
}

// advance moves the connection's state and keeps the destination's
// active/inactive counts as IPVS does.
func (w *worker) advance(c *conntrack.Conn, dir conntrack.PacketDir, tcpFlags uint8) {
	before := c.State
	wasActive, isActive := c.Advance(dir, tcpFlags, w.now, &w.timeouts)
	if c.State != before && syncWorthy(c.State) {
		w.syncOut(c)
	}
	if wasActive != isActive {
		w.moveCount(c.Dest, isActive)
	}
}

// moveCount moves one connection of destination dest between its
// inactive and active counts, as IPVS's state transitions do.
func (w *worker) moveCount(dest uint32, active bool) {
	if int(dest) >= len(w.snap.Dests) {
		return
	}
	cc := w.snap.Dests[dest].Conns
	if active {
		cc.Active.Add(1)
		cc.Inactive.Add(-1)
	} else {
		cc.Active.Add(-1)
		cc.Inactive.Add(1)
	}
}

// Persistence, as IPVS's ip_vs_sched_persist: a template entry per
// (client network, virtual service) remembers the real server; while it
// lives, new connections from that network go to the same server. The
// template is an ordinary table entry with protocol 0 (never a packet's),
// so it costs no separate structure and expires through the same reaper,
// which keeps it while it controls connections.

// templateProto marks a template's reply tuple: no packet carries it.
const templateProto = 0xff

// templateConn is the template entry keyed k (templateKey) that binds the
// client network to destination dest of svc until expires. Its reply
// tuple is unique per service and never matches a packet.
func templateConn(svc *service.SvcSnap, k conntrack.Tuple, d *service.DestSnap, dest uint32, expires int64) conntrack.Conn {
	return conntrack.Conn{
		Orig:       k,
		Reply:      conntrack.Tuple{Src: d.Addr, Dst: k.Src, SPort: d.Port, DPort: uint16(svc.ID), Proto: templateProto},
		Svc:        svc.ID,
		Dest:       dest,
		Flags:      conntrack.FlagTemplate,
		TimeoutSec: svc.Cfg.Timeout,
		Expires:    expires,
	}
}

func templateKey(svc *service.SvcSnap, client, vaddr [4]byte, vport uint16) conntrack.Tuple {
	bits := svc.Cfg.Netmask
	if bits <= 0 || bits > 32 {
		bits = 32
	}
	m := ^uint32(0) << (32 - bits)
	c := uint32(client[0])<<24 | uint32(client[1])<<16 | uint32(client[2])<<8 | uint32(client[3])
	c &= m
	return conntrack.Tuple{Src: [4]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}, Dst: vaddr, DPort: vport}
}

// persist looks up the client network's template. It returns the
// template's ID and destination when one is live and its destination
// still serves the service; a template whose destination left is dropped
// (ip_vs_check_template), so the connection is scheduled afresh.
func (w *worker) persist(svc *service.SvcSnap, client, vaddr [4]byte, vport uint16) (tpl, dest uint32, ok bool) {
	if !svc.Cfg.Persistent {
		return 0, 0, false
	}
	k := templateKey(svc, client, vaddr, vport)
	id, _, found := w.ct.Lookup(&k)
	if !found {
		return 0, 0, false
	}
	t := w.ct.Get(id)
	if d := &w.snap.Dests[t.Dest]; d.Removed || d.Svc != svc.ID {
		w.snap.Dests[t.Dest].Conns.Persist.Add(-1)
		w.ct.Delete(id)
		return 0, 0, false
	}
	return id, t.Dest, true
}

// template binds connection id to the client network's template,
// creating the template when persist found none, and re-arms it.
func (w *worker) template(id, tpl uint32, svc *service.SvcSnap, dest uint32, client, vaddr [4]byte, vport uint16) {
	timeout := int64(svc.Cfg.Timeout) * int64(time.Second)
	k := templateKey(svc, client, vaddr, vport)
	if tid, _, ok := w.ct.Lookup(&k); ok && tid == tpl {
		t := w.ct.Get(tid)
		t.Expires = w.now + timeout
		w.ct.Bind(id, tid)
		w.syncOut(t)
		return
	}
	d := &w.snap.Dests[dest]
	t := templateConn(svc, k, d, dest, w.now+timeout)
	tid, err := w.ct.Insert(&t)
	if err != nil {
		// A full table keeps the connection, without persistence.
		w.drop(dropTableFull)
		return
	}
	d.Conns.Persist.Add(1)
	w.ct.Bind(id, tid)
	w.syncOut(w.ct.Get(tid))
}

// FULLNAT local ports. A connection's replies come back to LIP:lport, and
// the steering program hashes that endpoint, so a worker only takes ports
// that hash to itself. A port is free when no tracked connection uses the
// same reply tuple: a port stays taken until its connection leaves the
// table (after TIME_WAIT), and the same LIP:lport serves different real
// servers at once, as the tuples differ.

const (
	lportMin = 1024
	// lportTries is the whole port range: a free port is found whenever
	// there is one (one candidate in N hashes to this worker, so a free
	// one is near while few are taken). When none is, the connection is
	// refused and counted, never given a port in use, and for
	// lportBackoff the worker refuses at once rather than scan the range
	// again for every SYN of a flood.
	lportTries   = 1<<16 - lportMin
	lportBackoff = int64(10 * time.Millisecond)
	// pairBackoff is how long a local address whose ports are all taken
	// towards one real server is passed over for that server: the
	// addresses take turns, and a full search of an exhausted one before
	// every SYN would cost a millisecond each.
	pairBackoff = int64(time.Second)
)

func (w *worker) localPort(svc *service.SvcSnap, destID uint32, d *service.DestSnap, proto uint8) (lip [4]byte, lport uint16, ok bool) {
	if len(svc.LocalAddrs) == 0 {
		return lip, 0, false
	}
	if w.lportFull != 0 && w.now-w.lportFull < lportBackoff {
		return lip, 0, false
	}
	// Addresses that failed towards d lately are searched last, and only
	// when no other has a port.
	for pass := 0; pass < 2; pass++ {
		skipped := false
		for range len(svc.LocalAddrs) {
			w.lipNext = (w.lipNext + 1) % len(svc.LocalAddrs)
			lip = svc.LocalAddrs[w.lipNext]
			var full *int64
			if i := int(destID)*w.lipStride + w.lipNext; w.lipNext < w.lipStride && i < len(w.pairFull) {
				full = &w.pairFull[i]
				recent := *full != 0 && w.now-*full < pairBackoff
				if pass == 0 && recent {
					skipped = true
					continue
				}
				if pass == 1 && (!recent || *full == w.now) {
					continue // searched in the first pass, or this round
				}
			} else if pass == 1 {
				continue
			}
			if w.fullScan(lip, d, proto, &lport) {
				return lip, lport, true
			}
			w.lportMisses++
			if full != nil {
				*full = w.now
			}
		}
		if !skipped {
			break
		}
	}
	// Only a search that found nothing starts the backoff: the SYNs it
	// refuses must not keep extending it.
	w.lportFull = w.now
	return lip, 0, false
}

// fullScan looks for a free local port of lip towards d, from the
// worker's cursor on, over the whole range.
func (w *worker) fullScan(lip [4]byte, d *service.DestSnap, proto uint8, lport *uint16) bool {
	lipv := be32(lip)
	for range lportTries {
		w.lportNext++
		if w.lportNext < lportMin {
			w.lportNext = lportMin
		}
		port := w.lportNext
		if w.nworkers > 1 && int(steerKeyOf(lipv, port)%uint32(w.nworkers)) != w.id {
			continue
		}
		k := conntrack.Tuple{Src: d.Addr, Dst: lip, SPort: d.Port, DPort: port, Proto: proto}
		if _, _, taken := w.ct.Lookup(&k); !taken {
			*lport = port
			return true
		}
	}
	return false
}

// reuse implements IPVS's conn_reuse_mode 1: a SYN from the client for a
// connection that is closing (TIME_WAIT or CLOSE) and not controlled by a
// persistence template opens a new connection, which may go to another
// server; the old entry is expired at once. Clients that reuse ports
// quickly (the server closed first, so the client holds no TIME_WAIT)
// would otherwise be glued to old connections.
func (w *worker) reuse(id uint32, proto uint8, tcpFlags uint8) bool {
	if proto != header.ProtoTCP || tcpFlags&(header.TCPFlagSyn|header.TCPFlagAck) != header.TCPFlagSyn {
		return false
	}
	c := w.ct.Get(id)
	if c.Control != 0 || (c.State != conntrack.StateTimeWait && c.State != conntrack.StateClose) {
		return false
	}
	w.expire(id, c)
	if service.Fwd(c.Fwd) == service.FwdFullNat {
		w.reserve(id, c)
		return true
	}
	w.ct.Delete(id)
	return true
}

// reservedProto is a FULLNAT reservation's original-direction protocol:
// no packet carries it, so only its reply tuple can match.
const reservedProto = 0xfe

// reserve replaces FULLNAT connection id, ended early by a reused client
// port, with an entry that keeps its local endpoint taken towards its
// server for a TIME_WAIT period: the server closed first and holds the
// tuple, and a new connection from the same LIP:lport would meet that
// TIME_WAIT and be refused. A full table just frees the port.
func (w *worker) reserve(id uint32, c *conntrack.Conn) {
	reply := c.Reply
	w.ct.Delete(id)
	r := conntrack.Conn{
		Orig:    conntrack.Tuple{Src: reply.Dst, Dst: reply.Src, SPort: reply.DPort, DPort: reply.SPort, Proto: reservedProto},
		Reply:   reply,
		State:   conntrack.StateTimeWait,
		Flags:   conntrack.FlagReserved,
		Expires: w.now + w.timeouts.Timeout(conntrack.StateTimeWait),
	}
	if _, err := w.ct.Insert(&r); err == nil {
		w.stats.reserved.add(1)
	}
}

// checkOwner counts a packet that reached this worker although the
// steering program should have sent it to another: the client endpoint
// (or FULLNAT's local endpoint) is the source of an original-direction
// packet and the destination of a reply. The direction comes from the
// conntrack lookup, so this costs no map lookup.
func (w *worker) checkOwner(t *conntrack.Tuple, dir conntrack.Dir) {
	a, port := t.Src, t.SPort
	if dir == conntrack.DirReply {
		a, port = t.Dst, t.DPort
	}
	k := w.steer.key(a, port)
	if int(k%uint32(w.nworkers)) != w.id {
		w.stats.misdirected.add(1)
	}
}
