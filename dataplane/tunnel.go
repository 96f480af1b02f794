package dataplane

import (
	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/modes"
)

// TUN mode: the client's packet goes to the real server inside an outer
// IPv4 header (director → real server, protocol 4). virtio_net_hdr cannot
// describe TCP GSO inside IPIP, so super-frames are segmented here, and
// every packet leaves with a complete checksum: the real server's
// decapsulator then needs no offload metadata.

// arena holds frames the worker builds itself (TUN segments, ICMP errors)
// until its transmit batches are flushed.
type arena struct {
	buf []byte
	n   int
}

const arenaSize = 1 << 20

// alloc returns size bytes of the arena, flushing every port first when
// the arena is full (the queued frames point into it).
func (w *worker) alloc(size int) []byte {
	if w.arena.buf == nil {
		w.arena.buf = make([]byte, arenaSize)
	}
	if w.arena.n+size > len(w.arena.buf) {
		w.flushAll()
	}
	b := w.arena.buf[w.arena.n : w.arena.n+size : w.arena.n+size]
	w.arena.n += size
	return b
}

// flushAll sends every port's batch; the arena is free again after.
func (w *worker) flushAll() {
	for _, p := range w.ports {
		if p.txN > 0 || p.xsk != nil {
			sent, dropped := p.flush()
			w.stats.txFrames.add(uint64(sent))
			w.stats.drops[dropTx].add(uint64(dropped))
		}
	}
	w.arena.n = 0
}

// completeChecksum finishes a partial L4 checksum in software, as the
// kernel's skb_checksum_help does.
func completeChecksum(frame []byte, start, off int) {
	if start+off+2 > len(frame) {
		return
	}
	x := ^header.Checksum(frame[start:], 0)
	if x == 0 && off == header.UDPChecksumOffset {
		x = 0xffff
	}
	frame[start+off], frame[start+off+1] = byte(x>>8), byte(x)
}

// tunnel sends a client packet of connection c to its real server in
// IPIP. in is the port the packet came from, for an ICMP error back.
func (w *worker) tunnel(in *port, buf []byte, ip header.IPv4, c *conntrack.Conn) {
	q := w.portByIf(c.DestIf)
	if q == nil {
		w.drop(dropNoNextHop)
		return
	}
	vnet := header.VirtioNetHdr(buf[:vnetHdrLen])
	frame := buf[vnetHdrLen:]
	src := w.snap.Dests[c.Dest].NextHop.Src
	if vnet.GSOType() != header.VirtioNetHdrGSONone {
		mss := int(vnet.GSOSize())
		ihl := ip.HeaderLength()
		tcp := header.TCP(ip.Payload())
		if ip.Protocol() != header.ProtoTCP || !tcp.IsValid(len(tcp)) || mss == 0 {
			w.drop(dropBadL4)
			return
		}
		if ihl+tcp.DataOffset()+mss+modes.IPIPOverhead > q.mtu {
			w.fragNeeded(in, q, frame, c, ip)
			return
		}
		if w.segScratch == nil {
			w.segScratch = make([]byte, vnetHdrLen+header.EthernetMinimumSize+0xffff)
		}
		w.tunQ, w.tunConn, w.tunSrc = q, c, src
		if modes.SegmentTCP4(frame, mss, w.segScratch, w.emitSegment) == 0 {
			w.drop(dropBadL4)
		}
		return
	}
	if int(ip.TotalLength())+modes.IPIPOverhead > q.mtu {
		w.fragNeeded(in, q, frame, c, ip)
		return
	}
	if vnet.Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
		completeChecksum(frame, int(vnet.CsumStart()), int(vnet.CsumOffset()))
	}
	clearVnet(buf)
	head, off := w.head, Headroom
	if head == nil {
		head = w.alloc(Headroom + len(buf))
		copy(head[Headroom:], buf)
	}
	w.encapSend(q, head, off, src, c)
}

func (w *worker) encapSend(q *port, head []byte, off int, src [4]byte, c *conntrack.Conn) {
	enc := modes.EncapIPIP(head, off, src, c.Reply.Src, w.ipID)
	if enc == nil {
		w.drop(dropBadIPv4)
		return
	}
	w.ipID++
	eth := header.Ethernet(enc[vnetHdrLen:])
	eth.SetSrc(q.mac)
	eth.SetDst(c.DestMAC)
	w.send(q, enc)
}

// emitSegment is SegmentTCP4's callback, bound once so that passing it
// allocates nothing; its context is in w.tun*.
func (w *worker) emitSegment(vnet header.VirtioNetHdr, seg []byte) {
	completeChecksum(seg, int(vnet.CsumStart()), int(vnet.CsumOffset()))
	out := w.alloc(Headroom + vnetHdrLen + len(seg))
	clear(out[Headroom : Headroom+vnetHdrLen])
	copy(out[Headroom+vnetHdrLen:], seg)
	w.encapSend(w.tunQ, out, Headroom, w.tunSrc, w.tunConn)
}

// fragNeeded answers a packet too big for the tunnel: with DF set, an ICMP
// "fragmentation needed" from the VIP with the tunnel's MTU, as IPVS's
// tunnel transmit does; without DF it is dropped (uvs does not fragment).
func (w *worker) fragNeeded(in, q *port, frame []byte, c *conntrack.Conn, ip header.IPv4) {
	w.drop(dropTooBig)
	if ip.Flags()&header.IPv4FlagDontFragment == 0 {
		return
	}
	mtu := q.mtu - modes.IPIPOverhead
	out := w.alloc(vnetHdrLen + 128)
	clear(out[:vnetHdrLen])
	icmp := modes.FragNeeded(out[vnetHdrLen:], frame, c.Orig.Dst, uint16(mtu))
	if icmp == nil {
		return
	}
	w.stats.fragNeeded.add(1)
	w.send(in, out[:vnetHdrLen+len(icmp)])
}
