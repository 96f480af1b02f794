package dataplane

import (
	"encoding/binary"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// Firewall-mark services. A fwmark service matches the mark that the
// operator's netfilter rules set (iptables -t mangle ... -j MARK), and
// netfilter runs after the capture rings have seen the frame, so the mark
// is not in the ring. The daemon queues the packets that need it (TCP
// connection openers and UDP with a fwmark service's mark) to an NFQUEUE
// and hands each one here with its mark (InjectMarked). The owner worker
// takes it from a single-producer ring of fixed slots, so the hand-over
// costs no lock and no allocation; the rest of a TCP connection is
// forwarded from the capture rings once its SYN made the entry.
//
// Every queued packet also reached the rings first. Which copy a worker
// acts on is fixed by the packet alone, so the two never both go out:
//   - a marked copy opens or continues connections of fwmark services
//     only; a packet tracked by any other connection is the ring's
//     (counted as mark_dup);
//   - the ring leaves to the queue what the queue brings: a fwmark
//     connection's UDP and TCP openers, and UDP and openers that match no
//     service while fwmark services exist (counted as mark_deferred).
// A packet matching both a fwmark service and an address service goes to
// the address service: its ring copy is first. IPVS prefers the fwmark.

// markSlotIP bounds the IP packet a slot holds: a jumbo frame.
const markSlotIP = 9216

// markSlotLen is a slot's buffer: headroom for IPIP, then what a ring
// slot holds (virtio_net_hdr, Ethernet header, IP packet).
const markSlotLen = Headroom + vnetHdrLen + header.EthernetMinimumSize + markSlotIP

type markSlot struct {
	buf     [markSlotLen]byte
	n       int // bytes after Headroom
	ifindex int32
	mark    uint32
}

// markRing is a single-producer, single-consumer ring of slots. The
// producer fills slot head and publishes it by storing head+1; the
// consumer reads slots up to head and gives them back by storing tail
// once their transmit batch has been flushed.
type markRing struct {
	slots []markSlot
	mask  uint64
	head  atomic.Uint64
	_     [56]byte // keep head and tail on separate cache lines
	tail  atomic.Uint64
	// taken is how many slots from tail the consumer is working on.
	taken uint64
	// wake is an eventfd the producer writes after a batch, so a worker
	// asleep in poll(2) looks at the ring.
	wake int
}

func newMarkRing(size int) (*markRing, error) {
	n := 1
	for n < size {
		n <<= 1
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &markRing{slots: make([]markSlot, n), mask: uint64(n - 1), wake: fd}, nil
}

// claim returns the slot the producer may fill next, or nil when full.
func (r *markRing) claim() *markSlot {
	h := r.head.Load()
	if h-r.tail.Load() == uint64(len(r.slots)) {
		return nil
	}
	return &r.slots[h&r.mask]
}

func (r *markRing) publish() { r.head.Add(1) }

// next hands the consumer its next slot, or nil.
func (r *markRing) next() *markSlot {
	t := r.tail.Load() + r.taken
	if t == r.head.Load() {
		return nil
	}
	r.taken++
	return &r.slots[t&r.mask]
}

// release gives back every slot next handed out.
func (r *markRing) release() {
	if r.taken > 0 {
		r.tail.Add(r.taken)
		r.taken = 0
	}
}

func (r *markRing) close() {
	if r.wake >= 0 {
		unix.Close(r.wake)
		r.wake = -1
	}
}

// MarkStats counts what InjectMarked refused.
type MarkStats struct {
	Full, BadIface, Invalid uint64
}

// InjectMarked hands a packet that netfilter marked with mark (its IPv4
// packet, the interface it came in on and its Ethernet source) to the
// worker that owns its connection. It copies the packet and returns at
// once; false means it was refused (and counted). Call it from one
// goroutine only, then Wake once per batch.
func (e *Engine) InjectMarked(ifindex int32, src [6]byte, mark uint32, pkt []byte) bool {
	w := e.workers[0]
	if w.marks == nil {
		return false
	}
	var mac [6]byte
	found := false
	for _, ifc := range e.ifaces {
		if int32(ifc.Index) == ifindex {
			mac, found = ifc.MAC, true
			break
		}
	}
	if !found {
		e.markStats.badIface.Add(1)
		return false
	}
	if len(pkt) < header.IPv4MinimumSize || len(pkt) > markSlotIP {
		e.markStats.invalid.Add(1)
		return false
	}
	if len(e.workers) > 1 {
		if s := e.model.Snapshot(); s != e.markSnap {
			e.markSnap, e.markSteer = s, steeringOf(s)
		}
		w = e.workers[e.markOwner(pkt)]
	}
	slot := w.marks.claim()
	if slot == nil {
		e.markStats.full.Add(1)
		return false
	}
	b := slot.buf[Headroom:]
	clear(b[:vnetHdrLen])
	eth := header.Ethernet(b[vnetHdrLen:])
	eth.SetDst(mac)
	eth.SetSrc(src)
	eth.SetType(header.EtherTypeIPv4)
	n := copy(b[vnetHdrLen+header.EthernetMinimumSize:], pkt)
	slot.n = vnetHdrLen + header.EthernetMinimumSize + n
	slot.ifindex, slot.mark = ifindex, mark
	w.marks.publish()
	e.markWoken[w.id] = true
	return true
}

// Wake tells the workers InjectMarked fed since the last Wake to look at
// their rings.
func (e *Engine) Wake() {
	one := [8]byte{1}
	for i, woken := range e.markWoken {
		if woken {
			unix.Write(e.workers[i].marks.wake, one[:])
			e.markWoken[i] = false
		}
	}
}

// markOwner is the worker the steering program would pick for the
// packet's ring copy: its source is the client endpoint.
func (e *Engine) markOwner(pkt []byte) int {
	ip := header.IPv4(pkt)
	ihl := int(ip.HeaderLength())
	if ihl < header.IPv4MinimumSize || len(pkt) < ihl+4 {
		return 0
	}
	// TCP and UDP both start with the source port.
	k := e.markSteer.key(ip.Src(), header.UDP(pkt[ihl:]).SrcPort())
	return int(k % uint32(len(e.workers)))
}

// MarkCounters sums what InjectMarked refused.
func (e *Engine) MarkCounters() MarkStats {
	return MarkStats{Full: e.markStats.full.Load(), BadIface: e.markStats.badIface.Load(), Invalid: e.markStats.invalid.Load()}
}

// drainMarks runs the worker's marked packets through the pipeline, up to
// a batch; their slots stay taken until releaseMarks, after the flush.
func (w *worker) drainMarks() int {
	n := 0
	for ; n < w.batch; n++ {
		s := w.marks.next()
		if s == nil {
			break
		}
		p := w.portByIf(s.ifindex)
		if p == nil {
			w.stats.ignored.add(1)
			continue
		}
		w.head = s.buf[:Headroom+s.n]
		w.mark = s.mark
		w.stats.markIn.add(1)
		w.ipv4(p, s.buf[Headroom:Headroom+s.n])
		w.mark = 0
	}
	return n
}

// deferToMarks reports whether a ring packet with no connection of its
// own is left to the queue: UDP and TCP openers may carry a mark when
// some service is a fwmark one.
func (w *worker) deferToMarks(proto, tcpFlags uint8) bool {
	return len(w.snap.Marks) > 0 && w.mark == 0 && queuedByMark(proto, tcpFlags)
}

// queuedByMark is the daemon's queue rule: TCP with SYN and neither ACK
// nor RST, and all UDP.
func queuedByMark(proto, tcpFlags uint8) bool {
	return proto == header.ProtoUDP ||
		tcpFlags&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst) == header.TCPFlagSyn
}

// markVAddr is a fwmark service's persistence template address: IPVS
// keys it by the mark written as an IPv4 address, port 0.
func markVAddr(svc *service.SvcSnap) [4]byte {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], svc.Cfg.Key.FWMark)
	return a
}
