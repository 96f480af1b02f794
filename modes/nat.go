package modes

import "github.com/uvs-project/uvs/header"

// RewriteDst sets the IPv4 destination address and, for TCP and UDP, the
// destination port, fixing the IPv4 header checksum and the transport
// checksum incrementally for mode.
//
// ip must have passed IPv4.IsValid. Other protocols, non-first fragments
// and transport headers cut short get the address change only. A first
// fragment gets the port too: its checksum covers the whole datagram, so
// the incremental update stays right.
func RewriteDst(ip header.IPv4, mode CsumMode, addr [4]byte, port uint16) {
	old := ip.Dst()
	ip.SetDst(addr)
	ip.SetChecksum(header.ChecksumUpdateAddr(ip.Checksum(), old, addr))
	rewriteL4(ip, mode, old, addr, dstPort, port)
}

// RewriteSrc is RewriteDst for the source address and port.
func RewriteSrc(ip header.IPv4, mode CsumMode, addr [4]byte, port uint16) {
	old := ip.Src()
	ip.SetSrc(addr)
	ip.SetChecksum(header.ChecksumUpdateAddr(ip.Checksum(), old, addr))
	rewriteL4(ip, mode, old, addr, srcPort, port)
}

// NATIn translates a client→VIP:vport packet into client→RIP:rport.
func NATIn(ip header.IPv4, mode CsumMode, rip [4]byte, rport uint16) {
	RewriteDst(ip, mode, rip, rport)
}

// NATOut translates a real server's RIP:rport→client reply into
// VIP:vport→client.
func NATOut(ip header.IPv4, mode CsumMode, vip [4]byte, vport uint16) {
	RewriteSrc(ip, mode, vip, vport)
}
