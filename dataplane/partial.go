package dataplane

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/header"
)

// finishHiddenPartial finishes the TCP or UDP checksum of an Ethernet frame
// whose sender left it to offload (CHECKSUM_PARTIAL: the field holds only
// the pseudo-header sum) when no metadata says so. XDP drops the skb's
// checksum state, so a local sender's frames reach an AF_XDP socket on a
// veth that way, and forwarded as they are, the receiver would drop them.
//
// A field equal to the pseudo-header sum is the mark. A complete checksum
// can equal it by chance (one frame in 65536), so the full sum decides:
// valid means complete. There is no ambiguity: a partial frame whose field
// already makes the full sum valid would be finished to the same value.
// It reports whether it changed the field.
func finishHiddenPartial(frame []byte) bool {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize ||
		header.Ethernet(frame).Type() != header.EtherTypeIPv4 {
		return false
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !ip.IsValid(len(ip)) || ip.IsFragment() {
		return false
	}
	proto := ip.Protocol()
	var off int
	switch proto {
	case header.ProtoTCP:
		off = header.TCPChecksumOffset
	case header.ProtoUDP:
		off = header.UDPChecksumOffset
	default:
		return false
	}
	l4 := ip.Payload()
	if len(l4) < off+2 {
		return false
	}
	ps := header.PseudoHeaderChecksum(proto, ip.Src(), ip.Dst(), uint16(len(l4)))
	if binary.BigEndian.Uint16(l4[off:]) != ps || header.Checksum(l4, ps) == 0xffff {
		return false
	}
	// The field holds ps, so summing from the L4 header on finishes it,
	// up to Total Length: Ethernet padding is not the datagram's.
	start := header.EthernetMinimumSize + ip.HeaderLength()
	completeChecksum(frame[:start+len(l4)], start, off)
	return true
}
