package modes

import (
	"encoding/binary"

	"github.com/uvs-project/uvs/header"
)

// ICMPErrorQuote returns the datagram quoted by an ICMP error that may
// concern a NAT connection: destination unreachable (fragmentation needed
// included), source quench, time exceeded or parameter problem, quoting a
// TCP or UDP packet. inner is the quoted IPv4 header followed by exactly 8
// bytes of transport header, innerL4 those 8 bytes (ports first; the UDP
// checksum, never the TCP one).
//
// ok is false for anything else: another protocol or ICMP type (redirects
// are not translated), a fragmented ICMP message, a quote too short, or a
// quoted non-first fragment. ip must have passed IPv4.IsValid.
func ICMPErrorQuote(ip header.IPv4) (inner header.IPv4, innerL4 []byte, ok bool) {
	if ip.Protocol() != header.ProtoICMP || ip.IsFragment() {
		return nil, nil, false
	}
	m := header.ICMPv4(ip.Payload())
	if !m.IsValid() {
		return nil, nil, false
	}
	switch m.Type() {
	case header.ICMPv4DestUnreachable, header.ICMPv4SourceQuench,
		header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
	default:
		return nil, nil, false
	}
	q := m.Payload()
	if len(q) < header.IPv4MinimumSize {
		return nil, nil, false
	}
	in := header.IPv4(q)
	hl := in.HeaderLength()
	if in.Version() != 4 || hl < header.IPv4MinimumSize || len(q) < hl+8 || in.FragmentOffset() != 0 {
		return nil, nil, false
	}
	if p := in.Protocol(); p != header.ProtoTCP && p != header.ProtoUDP {
		return nil, nil, false
	}
	return in[: hl+8 : hl+8], q[hl : hl+8 : hl+8], true
}

// NATICMPOut translates an ICMP error travelling from the real servers'
// side to a client about a packet of a NAT connection, as IPVS's
// ip_vs_nat_icmp does outbound: the quote client:cport→RIP:rport becomes
// client:cport→VIP:vport, and the outer source becomes the VIP when it is
// the real server itself (an error from a router keeps the router's
// address). The quoted header checksum, the ICMP checksum and the outer
// header checksum are fixed incrementally; the quoted transport checksum
// is left as it is, as IPVS does.
//
// It returns false, and changes nothing, when ICMPErrorQuote finds no
// quote.
func NATICMPOut(ip header.IPv4, vip [4]byte, vport uint16) bool {
	inner, l4, ok := ICMPErrorQuote(ip)
	if !ok {
		return false
	}
	rip := inner.Dst()
	m := header.ICMPv4(ip.Payload())
	s := ^m.Checksum()
	inner.SetDst(vip)
	s = rewriteQuote(inner, l4, s, rip, vip, dstPort, vport)
	m.SetChecksum(^s)
	if ip.Src() == rip {
		ip.SetSrc(vip)
		ip.SetChecksum(header.ChecksumUpdateAddr(ip.Checksum(), rip, vip))
	}
	return true
}

// NATICMPIn translates an ICMP error travelling from a client to the VIP
// about a packet of a NAT connection, as ip_vs_nat_icmp does inbound: the
// outer destination becomes the real server and the quote
// VIP:vport→client:cport becomes RIP:rport→client:cport, with the same
// checksum fixes as NATICMPOut. It returns false, and changes nothing, when
// ICMPErrorQuote finds no quote.
func NATICMPIn(ip header.IPv4, rip [4]byte, rport uint16) bool {
	inner, l4, ok := ICMPErrorQuote(ip)
	if !ok {
		return false
	}
	vip := inner.Src()
	m := header.ICMPv4(ip.Payload())
	s := ^m.Checksum()
	inner.SetSrc(rip)
	s = rewriteQuote(inner, l4, s, vip, rip, srcPort, rport)
	m.SetChecksum(^s)
	old := ip.Dst()
	ip.SetDst(rip)
	ip.SetChecksum(header.ChecksumUpdateAddr(ip.Checksum(), old, rip))
	return true
}

// rewriteQuote finishes an address change from oldAddr to newAddr already
// written into the quoted header inner: it fixes inner's checksum, sets the
// quoted port at offset port of l4, and returns the ICMP message's
// uncomplemented sum s updated for all three changes. Every changed field
// sits at an even offset of the ICMP message (the quote starts at 8), so
// the 16-bit updates apply unshifted.
func rewriteQuote(inner header.IPv4, l4 []byte, s uint16, oldAddr, newAddr [4]byte, port int, newPort uint16) uint16 {
	s = header.SumUpdateAddr(s, oldAddr, newAddr)
	oc := inner.Checksum()
	nc := header.ChecksumUpdateAddr(oc, oldAddr, newAddr)
	inner.SetChecksum(nc)
	s = header.SumUpdate2(s, oc, nc)
	op := binary.BigEndian.Uint16(l4[port:])
	binary.BigEndian.PutUint16(l4[port:], newPort)
	return header.SumUpdate2(s, op, newPort)
}
