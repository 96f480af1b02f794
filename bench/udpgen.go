package bench

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// UDP generator frame layout.
const (
	ethLen      = 14
	ipv4Len     = 20
	udpLen      = 8
	udpPayload  = 64
	udpFrameLen = ethLen + ipv4Len + udpLen + udpPayload // 106 bytes
	// udpFlows source ports per destination, so that hashing and
	// round-robin peers spread the load.
	udpFlows     = 1024
	udpBasePort  = 20000
	udpBatch     = 64 // frames per sendmmsg
	udpProtocol  = 17
	etherTypeIP4 = 0x0800
)

// UDPFrames builds one Ethernet frame per flow: 64-byte payload UDP from
// src to each of dsts in turn (frame i goes to dsts[i%len(dsts)]) on
// dstPort, source port udpBasePort+i, with complete IPv4 and UDP
// checksums.
func UDPFrames(srcMAC, dstMAC net.HardwareAddr, src netip.Addr, dsts []netip.Addr, dstPort uint16, flows int) [][]byte {
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = udpFrame(srcMAC, dstMAC, src, dsts[i%len(dsts)], uint16(udpBasePort+i), dstPort, uint16(i))
	}
	return frames
}

func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport, id uint16) []byte {
	f := make([]byte, udpFrameLen)
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIP4)
	ip := f[ethLen : ethLen+ipv4Len]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:4], ipv4Len+udpLen+udpPayload)
	binary.BigEndian.PutUint16(ip[4:6], id)
	ip[8] = 64 // TTL
	ip[9] = udpProtocol
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], ^fold(sum16(ip, 0)))
	u := f[ethLen+ipv4Len:]
	binary.BigEndian.PutUint16(u[0:2], sport)
	binary.BigEndian.PutUint16(u[2:4], dport)
	binary.BigEndian.PutUint16(u[4:6], udpLen+udpPayload)
	for i := udpLen; i < len(u); i++ {
		u[i] = byte(i)
	}
	// Pseudo-header: addresses, protocol, UDP length.
	pseudo := sum16(ip[12:20], 0) + udpProtocol + uint32(udpLen+udpPayload)
	c := ^fold(sum16(u, pseudo))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(u[6:8], c)
	return f
}

// sum16 adds b as big-endian 16-bit words to acc (one's complement
// partial sum, not folded).
func sum16(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}
