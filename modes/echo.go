package modes

import "github.com/uvs-project/uvs/header"

// echoTTL is the TTL of the echo replies uvs sends, Linux's default.
const echoTTL = 64

// EchoReply turns an ICMP echo request, addressed to a VIP, into its reply
// in place: MAC addresses and IPv4 addresses swapped, type echo reply
// (code 0), TTL 64, checksums fixed incrementally; identifier, sequence
// number, data and IP options are kept.
//
// It returns false, and changes nothing, unless ip holds an unfragmented
// echo request. eth must have passed Ethernet.IsValid and ip
// IPv4.IsValid.
func EchoReply(eth header.Ethernet, ip header.IPv4) bool {
	if ip.Protocol() != header.ProtoICMP || ip.IsFragment() {
		return false
	}
	m := header.ICMPv4(ip.Payload())
	if !m.IsValid() || m.Type() != header.ICMPv4Echo {
		return false
	}
	old := uint16(m.Type())<<8 | uint16(m.Code())
	m.SetType(header.ICMPv4EchoReply)
	m.SetCode(0)
	x := header.ChecksumUpdate2(m.Checksum(), old, 0)
	if x == 0 {
		// The update yields 0 when the reply sums to 0xffff, or to 0 if it
		// is all zeros (identifier, sequence number and data 0), which
		// only 0xffff verifies; 0xffff verifies in both cases.
		x = 0xffff
	}
	m.SetChecksum(x)

	// Swapping the addresses leaves the header's sum as it was.
	src, dst := ip.Src(), ip.Dst()
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetTTLWithChecksumUpdate(echoTTL)

	smac, dmac := eth.Src(), eth.Dst()
	eth.SetSrc(dmac)
	eth.SetDst(smac)
	return true
}
