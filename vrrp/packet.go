package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/uvs-project/uvs/header"
)

// VRRP version 2 advertisement (RFC 3768, section 5.1).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (1)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            ...                                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (n)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (1)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// VRRP version 3 advertisement (RFC 5798, section 5.1), for IPv4.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPv4 Address (1)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            ...                                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPv4 Address (n)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	vrVersType = 0
	vrVRID     = 1
	vrPriority = 2
	vrCount    = 3
	vrAuthType = 4 // v2
	vrAdverInt = 5 // v2: seconds
	vrMaxAdver = 4 // v3: 4 reserved bits, then 12 bits of centiseconds
	vrChecksum = 6
	vrAddrs    = 8

	vrHeaderSize   = 8
	authDataSize   = 8 // v2 only, after the addresses
	typeAdvert     = 1
	ttlVRRP        = 255  // RFC 5798 5.1.1.3: a router never forwards adverts
	tosCS6         = 0xc0 // network control, as keepalived marks its adverts
	maxAdverMask   = 0x0fff
	centisecond    = 10 * time.Millisecond
	ipv4HeaderSize = header.IPv4MinimumSize
)

// Auth types of VRRPv2 (RFC 3768 5.3.6; type 2, IP Authentication Header,
// is not supported, as in RFC 3768 itself).
const (
	AuthNone = 0
	AuthPass = 1 // simple text password, 8 bytes, zero padded
)

// MulticastGroup is the IPv4 destination of advertisements (RFC 5798 5.1.1.2).
var MulticastGroup = netip.MustParseAddr("224.0.0.18")

// MulticastMAC is the Ethernet destination for MulticastGroup (RFC 1112).
var MulticastMAC = [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}

// VirtualMAC returns the virtual router MAC address for IPv4,
// 00-00-5E-00-01-{VRID} (RFC 5798 7.3).
func VirtualMAC(vrid uint8) [6]byte {
	return [6]byte{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// Advert is a decoded advertisement. Fields that a version does not carry
// are zero: AuthType and AuthData in version 3.
type Advert struct {
	Version  uint8
	VRID     uint8
	Priority uint8
	// AdvertInt is the Adver Int (v2, whole seconds) or the Max Adver Int
	// (v3, centiseconds).
	AdvertInt time.Duration
	AuthType  uint8
	AuthData  [8]byte
	Addrs     []netip.Addr
}

// Reason says why a packet was dropped, or flagged, and indexes a counter
// array of NumReasons entries.
type Reason uint8

// Reasons. ParseAdvert returns the ones up to ReasonLength; Instance.Receive
// the rest.
const (
	ReasonOK Reason = iota
	// ReasonTruncated: shorter than an IPv4 header, than its Total
	// Length, or than the fixed VRRP header.
	ReasonTruncated
	// ReasonBadIP: not IPv4, a bad IHL or header checksum, a fragment, or
	// not protocol 112.
	ReasonBadIP
	// ReasonTTL: TTL not 255, so the packet may have been forwarded from
	// another link (RFC 5798 7.1).
	ReasonTTL
	ReasonVersion
	ReasonType
	ReasonChecksum
	// ReasonLength: too short for Count IP Addrs addresses (and, in v2, the
	// authentication data).
	ReasonLength
	// ReasonVRID: no instance for the advert's VRID.
	ReasonVRID
	// ReasonAuth: v2 auth type or password differs from ours.
	ReasonAuth
	// ReasonInterval: v2 advert interval differs from ours (RFC 3768 7.1),
	// or a v3 Max Adver Int of 0.
	ReasonInterval
	// ReasonAddrs: the address list differs from ours. It is counted but
	// the advert is still acted on, as keepalived does outside strict mode.
	ReasonAddrs
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonOK:        "ok",
	ReasonTruncated: "truncated",
	ReasonBadIP:     "bad_ip",
	ReasonTTL:       "ttl",
	ReasonVersion:   "version",
	ReasonType:      "type",
	ReasonChecksum:  "checksum",
	ReasonLength:    "length",
	ReasonVRID:      "vrid",
	ReasonAuth:      "auth",
	ReasonInterval:  "interval",
	ReasonAddrs:     "addrs",
}

// String returns the reason's name as used in metric labels.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// ParseAdvert decodes ip, a whole IPv4 packet from the IPv4 header on,
// into a and returns ReasonOK, or why it must be dropped. a.Addrs keeps its
// backing array, so parsing into the same Advert does not allocate once it
// has grown. On a drop, a holds whatever was decoded so far.
//
// The v2 checksum covers the VRRP message alone; the v3 one adds the IPv4
// pseudo-header (RFC 5798 5.2.8). Either covers the whole IP payload, as
// the sender computed it; bytes beyond the addresses (and v2 auth data)
// are allowed and ignored.
func ParseAdvert(ip []byte, a *Advert) Reason {
	h := header.IPv4(ip)
	if len(ip) < ipv4HeaderSize {
		return ReasonTruncated
	}
	hl := h.HeaderLength()
	if h.Version() != 4 || hl < ipv4HeaderSize || hl > int(h.TotalLength()) {
		return ReasonBadIP
	}
	if int(h.TotalLength()) > len(ip) {
		return ReasonTruncated
	}
	// Raw packet sockets see headers the kernel has not checked.
	if header.Checksum(ip[:hl], 0) != 0xffff || h.IsFragment() || h.Protocol() != header.ProtoVRRP {
		return ReasonBadIP
	}
	if h.TTL() != ttlVRRP {
		return ReasonTTL
	}
	m := ip[hl:h.TotalLength()]
	if len(m) < vrHeaderSize {
		return ReasonTruncated
	}
	a.Version = m[vrVersType] >> 4
	if a.Version != 2 && a.Version != 3 {
		return ReasonVersion
	}
	if m[vrVersType]&0x0f != typeAdvert {
		return ReasonType
	}
	count := int(m[vrCount])
	need := vrHeaderSize + 4*count
	if a.Version == 2 {
		need += authDataSize
	}
	if len(m) < need {
		return ReasonLength
	}
	var sum uint16
	if a.Version == 2 {
		sum = header.Checksum(m, 0)
	} else {
		ps := header.PseudoHeaderChecksum(header.ProtoVRRP, h.Src(), h.Dst(), uint16(len(m)))
		sum = header.Checksum(m, ps)
	}
	if sum != 0xffff {
		return ReasonChecksum
	}
	a.VRID = m[vrVRID]
	a.Priority = m[vrPriority]
	if a.Version == 2 {
		a.AuthType = m[vrAuthType]
		a.AdvertInt = time.Duration(m[vrAdverInt]) * time.Second
		a.AuthData = [8]byte(m[vrAddrs+4*count:])
	} else {
		a.AuthType = 0
		a.AuthData = [8]byte{}
		a.AdvertInt = time.Duration(binary.BigEndian.Uint16(m[vrMaxAdver:])&maxAdverMask) * centisecond
	}
	a.Addrs = a.Addrs[:0]
	for off := vrAddrs; off < vrAddrs+4*count; off += 4 {
		a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(m[off:])))
	}
	return ReasonOK
}

// AppendAdvert appends a complete IPv4 packet carrying a to b and returns
// the extended slice: TOS CS6, TTL 255, protocol 112, both checksums set.
//
// A v2 AdvertInt is sent in whole seconds and a v3 one in centiseconds,
// rounded down and capped at the field's maximum. It panics, as a
// programming error, on a version other than 2 or 3, more than 255
// addresses, or an address (src, dst or in a.Addrs) that is not IPv4.
func AppendAdvert(b []byte, src, dst netip.Addr, a *Advert) []byte {
	if a.Version != 2 && a.Version != 3 {
		panic(fmt.Sprintf("vrrp: AppendAdvert: got version %d, want 2 or 3", a.Version))
	}
	if len(a.Addrs) > 255 {
		panic(fmt.Sprintf("vrrp: AppendAdvert: got %d addresses, want at most 255", len(a.Addrs)))
	}
	n := vrHeaderSize + 4*len(a.Addrs)
	if a.Version == 2 {
		n += authDataSize
	}
	b, p := grow(b, ipv4HeaderSize+n)
	src4, dst4 := src.As4(), dst.As4()

	header.IPv4(p).Encode(&header.IPv4Fields{TOS: tosCS6, TotalLength: uint16(ipv4HeaderSize + n),
		TTL: ttlVRRP, Protocol: header.ProtoVRRP, Src: src4, Dst: dst4})

	m := p[ipv4HeaderSize:]
	m[vrVersType] = a.Version<<4 | typeAdvert
	m[vrVRID] = a.VRID
	m[vrPriority] = a.Priority
	m[vrCount] = uint8(len(a.Addrs))
	off := vrAddrs
	for _, addr := range a.Addrs {
		a4 := addr.As4()
		copy(m[off:], a4[:])
		off += 4
	}
	var sum uint16
	if a.Version == 2 {
		m[vrAuthType] = a.AuthType
		m[vrAdverInt] = uint8(max(0, min(a.AdvertInt/time.Second, 255)))
		copy(m[off:], a.AuthData[:])
		sum = header.Checksum(m, 0)
	} else {
		cs := uint16(max(0, min(a.AdvertInt/centisecond, maxAdverMask)))
		binary.BigEndian.PutUint16(m[vrMaxAdver:], cs)
		sum = header.Checksum(m, header.PseudoHeaderChecksum(header.ProtoVRRP, src4, dst4, uint16(n)))
	}
	binary.BigEndian.PutUint16(m[vrChecksum:], ^sum)
	return b
}

// AppendAdvertFrame appends an Ethernet header (type IPv4) and the packet
// of AppendAdvert to b. dstMAC is normally MulticastMAC and srcMAC the
// VirtualMAC of the VRID, or the interface's own address as keepalived
// uses without use_vmac.
func AppendAdvertFrame(b []byte, srcMAC, dstMAC [6]byte, src, dst netip.Addr, a *Advert) []byte {
	b = appendEthernet(b, dstMAC, srcMAC, header.EtherTypeIPv4)
	return AppendAdvert(b, src, dst, a)
}

// AppendGARP appends a gratuitous ARP for ip to b, as a new master sends
// for each virtual address: a broadcast ARP request whose sender and
// target address are both ip, with sender MAC srcMAC and a zero target
// MAC, the form keepalived sends. The frame is not padded to 60 bytes;
// the NIC does that.
func AppendGARP(b []byte, srcMAC [6]byte, ip netip.Addr) []byte {
	b = appendEthernet(b, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, srcMAC, header.EtherTypeARP)
	b, p := grow(b, header.ARPSize)
	arp := header.ARP(p)
	ip4 := ip.As4()
	arp.SetIPv4OverEthernet()
	arp.SetOp(header.ARPRequest)
	arp.SetSenderMAC(srcMAC)
	arp.SetSenderIP(ip4)
	arp.SetTargetIP(ip4)
	return b
}

func appendEthernet(b []byte, dst, src [6]byte, typ uint16) []byte {
	b, p := grow(b, header.EthernetMinimumSize)
	e := header.Ethernet(p)
	e.SetDst(dst)
	e.SetSrc(src)
	e.SetType(typ)
	return b
}

// grow extends b by n zeroed bytes and returns it and the new bytes.
func grow(b []byte, n int) ([]byte, []byte) {
	off := len(b)
	b = slices.Grow(b, n)[:off+n]
	p := b[off:]
	clear(p)
	return b, p
}
