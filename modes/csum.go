package modes

import (
	"encoding/binary"
	"strconv"

	"github.com/uvs-project/uvs/header"
)

// CsumMode says what a packet's TCP or UDP checksum field holds.
type CsumMode uint8

const (
	// CsumFull: the field holds a complete checksum, the complement of
	// the sum over pseudo-header and transport bytes (UDP: or 0 for
	// none). Every covered field that changes, addresses and ports, is
	// folded into it.
	CsumFull CsumMode = iota

	// CsumPartial: the field holds the uncomplemented sum of the
	// pseudo-header only (CHECKSUM_PARTIAL, virtio_net_hdr NEEDS_CSUM).
	// Whoever transmits the frame sums the transport bytes from csum_start
	// with it and stores the complement. Only pseudo-header changes
	// (addresses) are folded into the field; port changes are not, since
	// the ports are among the bytes still to be summed.
	CsumPartial
)

// String returns "full" or "partial".
func (m CsumMode) String() string {
	switch m {
	case CsumFull:
		return "full"
	case CsumPartial:
		return "partial"
	}
	return "CsumMode(" + strconv.Itoa(int(m)) + ")"
}

// ModeOf returns the checksum mode of the frame that h precedes.
func ModeOf(h header.VirtioNetHdr) CsumMode {
	if h.Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
		return CsumPartial
	}
	return CsumFull
}

// Port offsets, the same in TCP and UDP.
const (
	srcPort = 0
	dstPort = 2
)

// transport returns the TCP or UDP header of ip, the offset of its
// checksum field, and whether it is UDP; nil when ip carries neither, or
// is a non-first fragment, or the header is cut short.
func transport(ip header.IPv4) (l4 []byte, csum int, udp bool) {
	if ip.FragmentOffset() != 0 {
		return nil, 0, false
	}
	p := ip.Payload()
	switch ip.Protocol() {
	case header.ProtoTCP:
		if len(p) >= header.TCPMinimumSize {
			return p, header.TCPChecksumOffset, false
		}
	case header.ProtoUDP:
		if len(p) >= header.UDPSize {
			return p, header.UDPChecksumOffset, true
		}
	}
	return nil, 0, false
}

// rewriteL4 sets the port at offset port (srcPort, dstPort) of ip's TCP or
// UDP header to newPort, and fixes the transport checksum for that and for
// an address of the pseudo-header that changed from oldAddr to newAddr.
func rewriteL4(ip header.IPv4, mode CsumMode, oldAddr, newAddr [4]byte, port int, newPort uint16) {
	l4, csum, udp := transport(ip)
	if l4 == nil {
		return
	}
	oldPort := binary.BigEndian.Uint16(l4[port:])
	binary.BigEndian.PutUint16(l4[port:], newPort)
	x := binary.BigEndian.Uint16(l4[csum:])
	if mode == CsumPartial {
		x = header.SumUpdateAddr(x, oldAddr, newAddr)
	} else {
		if udp && x == 0 {
			return // no checksum, and it stays so
		}
		s := header.SumUpdateAddr(^x, oldAddr, newAddr)
		x = ^header.SumUpdate2(s, oldPort, newPort)
		if udp && x == 0 {
			x = 0xffff // a computed 0 is sent as all ones (RFC 768)
		}
	}
	binary.BigEndian.PutUint16(l4[csum:], x)
}
