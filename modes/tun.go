package modes

import (
	"github.com/uvs-project/uvs/header"
)

// IPIPOverhead is what TUN mode adds to a packet: one IPv4 header.
const IPIPOverhead = header.IPv4MinimumSize

// EncapIPIP wraps the IPv4 packet of the frame at head[off:] (virtio_net_hdr,
// Ethernet header, IPv4 packet) in an outer IPv4 header from src to dst
// (protocol 4), in place: the virtio and Ethernet headers move
// IPIPOverhead bytes towards the front of head, which must leave room for
// that (off >= IPIPOverhead). The outer header copies the inner TOS, TTL
// and DF bit, as IPVS's tunnel transmit does. A partial inner checksum
// stays partial: csum_start moves with the packet. It returns the new
// [vnet|Ethernet|outer IPv4|inner IPv4] slice, or nil when the frame is
// not IPv4 or the result would exceed 65535 bytes. The frame must not be
// a GSO super-frame (segment it first: virtio cannot describe TCP in IPIP).
func EncapIPIP(head []byte, off int, src, dst [4]byte, id uint16) []byte {
	const pre = header.VirtioNetHdrSize + header.EthernetMinimumSize
	if off < IPIPOverhead || len(head) < off+pre+header.IPv4MinimumSize {
		return nil
	}
	inner := header.IPv4(head[off+pre:])
	if !inner.IsValid(len(inner)) || int(inner.TotalLength())+IPIPOverhead > 0xffff {
		return nil
	}
	n := off - IPIPOverhead
	copy(head[n:n+pre], head[off:off+pre])
	vnet := header.VirtioNetHdr(head[n : n+header.VirtioNetHdrSize])
	if vnet.Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
		vnet.SetCsumStart(vnet.CsumStart() + IPIPOverhead)
	}
	header.IPv4(head[n+pre : n+pre+IPIPOverhead]).Encode(&header.IPv4Fields{
		TOS:         inner.TOS(),
		TotalLength: inner.TotalLength() + IPIPOverhead,
		ID:          id,
		Flags:       inner.Flags() & header.IPv4FlagDontFragment,
		TTL:         inner.TTL(),
		Protocol:    header.ProtoIPIP,
		Src:         src,
		Dst:         dst,
	})
	end := off + pre + int(inner.TotalLength())
	return head[n:end]
}

// FragNeeded builds, in out, the frame of an ICMP "fragmentation needed"
// error (type 3 code 4) answering the IPv4 packet in frame (Ethernet
// first): from src to the packet's source, quoting its header and the
// first 8 bytes of its payload, with next-hop MTU mtu. The Ethernet
// addresses are swapped from frame. It returns the frame (without a vnet
// header) or nil when out is too small or frame is not IPv4.
func FragNeeded(out, frame []byte, src [4]byte, mtu uint16) []byte {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize {
		return nil
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !ip.IsValid(len(ip)) {
		return nil
	}
	quote := min(int(ip.TotalLength()), ip.HeaderLength()+8)
	n := header.EthernetMinimumSize + header.IPv4MinimumSize + header.ICMPv4MinimumSize + quote
	if len(out) < n {
		return nil
	}
	out = out[:n]
	eth, in := header.Ethernet(out), header.Ethernet(frame)
	eth.SetDst(in.Src())
	eth.SetSrc(in.Dst())
	eth.SetType(header.EtherTypeIPv4)
	o := header.IPv4(out[header.EthernetMinimumSize:])
	// TOS internetwork control, as the kernel sends ICMP errors.
	o.Encode(&header.IPv4Fields{TOS: 0xc0, TotalLength: uint16(n - header.EthernetMinimumSize),
		TTL: 64, Protocol: header.ProtoICMP, Src: src, Dst: ip.Src()})
	m := header.ICMPv4(o[header.IPv4MinimumSize:])
	clear(m[:header.ICMPv4MinimumSize])
	m.SetType(header.ICMPv4DestUnreachable)
	m.SetCode(header.ICMPv4FragNeeded)
	m.SetMTU(mtu)
	copy(m[header.ICMPv4MinimumSize:], ip[:quote])
	m.SetChecksum(m.CalculateChecksum())
	return out
}

// DecapIPIP returns the inner IPv4 packet of an IPIP packet (outer IPv4
// header first), or ok=false when pkt is not a well-formed IPIP packet
// whose inner packet is IPv4 and fits. It is what a real server without
// the ipip module runs on each tunnelled packet (cmd/uvsrs).
func DecapIPIP(pkt []byte) (inner []byte, ok bool) {
	outer := header.IPv4(pkt)
	if len(pkt) < header.IPv4MinimumSize || !outer.IsValid(len(pkt)) || outer.Protocol() != header.ProtoIPIP || outer.IsFragment() {
		return nil, false
	}
	in := header.IPv4(outer.Payload())
	if len(in) < header.IPv4MinimumSize || !in.IsValid(len(in)) {
		return nil, false
	}
	return in[:in.TotalLength()], true
}
