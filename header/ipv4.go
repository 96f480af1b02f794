package header

import "encoding/binary"

// IPv4 header (RFC 791, section 3.1).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipVersIHL   = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProtocol  = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16
)

// IPv4MinimumSize is the size of an IPv4 header without options.
const IPv4MinimumSize = 20

// IP protocol numbers.
const (
	ProtoICMP = 1
	ProtoIPIP = 4
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoVRRP = 112
)

// IPv4 flags, as returned by IPv4.Flags.
const (
	IPv4FlagMoreFragments = 1 << 0
	IPv4FlagDontFragment  = 1 << 1
)

// IPv4 is a view over an IPv4 header and what follows it.
type IPv4 []byte

// IsValid reports whether b starts with a well-formed IPv4 header: version
// 4, IHL at least 5, and a header and Total Length that fit in the
// frameRemaining bytes available from b's start (and in b). Every accessor
// is safe on a view that passed it.
//
// A GSO super-frame passes: its Total Length covers the whole super-frame.
// A "BIG TCP" frame above 64 KiB (Total Length 0) does not.
func (b IPv4) IsValid(frameRemaining int) bool {
	avail := min(frameRemaining, len(b))
	if avail < IPv4MinimumSize || b[ipVersIHL]>>4 != 4 {
		return false
	}
	hl := b.HeaderLength()
	tl := int(b.TotalLength())
	return hl >= IPv4MinimumSize && hl <= tl && tl <= avail
}

// Version returns the version field.
func (b IPv4) Version() uint8 { return b[ipVersIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[ipVersIHL]&0x0f) * 4 }

// TOS returns the type of service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipTOS] }

// TotalLength returns the length of header and data in bytes.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipTotalLen:]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// Flags returns the three flag bits (IPv4FlagDontFragment,
// IPv4FlagMoreFragments).
func (b IPv4) Flags() uint8 { return b[ipFlagsFrag] >> 5 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() uint16 {
	return binary.BigEndian.Uint16(b[ipFlagsFrag:]) << 3
}

// More reports whether the More Fragments flag is set.
func (b IPv4) More() bool { return b.Flags()&IPv4FlagMoreFragments != 0 }

// IsFragment reports whether b is part of a fragmented datagram: More
// Fragments set or a non-zero offset.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipFlagsFrag:])&0x3fff != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// Protocol returns the protocol number of the payload.
func (b IPv4) Protocol() uint8 { return b[ipProtocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// Src returns the source address.
func (b IPv4) Src() [4]byte { return [4]byte(b[ipSrc : ipSrc+4]) }

// Dst returns the destination address.
func (b IPv4) Dst() [4]byte { return [4]byte(b[ipDst : ipDst+4]) }

// Payload returns the bytes from the end of the header to Total Length,
// clamped to the bytes present, so that it is also safe on a quoted,
// truncated header inside an ICMP error; nil if the header does not fit.
func (b IPv4) Payload() []byte {
	hl := b.HeaderLength()
	end := min(int(b.TotalLength()), len(b))
	if hl > end {
		return nil
	}
	return b[hl:end]
}

// SetTotalLength sets the total length field.
func (b IPv4) SetTotalLength(n uint16) { binary.BigEndian.PutUint16(b[ipTotalLen:], n) }

// SetID sets the identification field.
func (b IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(b[ipID:], id) }

// SetTTL sets the time to live.
func (b IPv4) SetTTL(ttl uint8) { b[ipTTL] = ttl }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(x uint16) { binary.BigEndian.PutUint16(b[ipChecksum:], x) }

// SetSrc sets the source address; the checksums are left alone.
func (b IPv4) SetSrc(a [4]byte) { copy(b[ipSrc:ipSrc+4], a[:]) }

// SetDst sets the destination address; the checksums are left alone.
func (b IPv4) SetDst(a [4]byte) { copy(b[ipDst:ipDst+4], a[:]) }

// CalculateChecksum returns the header checksum computed from scratch, as
// a new header needs it (an ICMP reply, an IPIP outer header): the
// complement of the sum of the header with the checksum field taken as 0.
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLength()
	s := Checksum(b[:ipChecksum], 0)
	return ^Checksum(b[ipChecksum+2:hl], s)
}

// DecTTLWithChecksumUpdate decrements the TTL and updates the header
// checksum for it (RFC 1624). The caller drops the packet instead when the
// TTL is already at or below 1.
func (b IPv4) DecTTLWithChecksumUpdate() {
	b.SetTTLWithChecksumUpdate(b[ipTTL] - 1)
}

// SetTTLWithChecksumUpdate sets the TTL and updates the header checksum.
func (b IPv4) SetTTLWithChecksumUpdate(ttl uint8) {
	old := binary.BigEndian.Uint16(b[ipTTL:])
	b[ipTTL] = ttl
	b.SetChecksum(ChecksumUpdate2(b.Checksum(), old, binary.BigEndian.Uint16(b[ipTTL:])))
}

// IPv4Fields are the fields of an IPv4 header without options.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	Flags       uint8 // IPv4FlagDontFragment, IPv4FlagMoreFragments; offset 0
	TTL         uint8
	Protocol    uint8
	Src, Dst    [4]byte
}

// Encode writes a 20-byte header with f's fields and its checksum, as a
// new packet (an IPIP outer header, a VRRP advert, an ICMP error) needs.
func (b IPv4) Encode(f *IPv4Fields) {
	b[ipVersIHL] = 4<<4 | IPv4MinimumSize/4
	b[ipTOS] = f.TOS
	b.SetTotalLength(f.TotalLength)
	b.SetID(f.ID)
	binary.BigEndian.PutUint16(b[ipFlagsFrag:], uint16(f.Flags)<<13)
	b[ipTTL] = f.TTL
	b[ipProtocol] = f.Protocol
	b.SetChecksum(0)
	b.SetSrc(f.Src)
	b.SetDst(f.Dst)
	b.SetChecksum(b.CalculateChecksum())
}
