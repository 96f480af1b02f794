package header

import "encoding/binary"

// UDP header (RFC 768).
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// UDPSize is the size of a UDP header.
const UDPSize = 8

// UDPChecksumOffset is the checksum field's offset in the UDP header: the
// csum_offset of a CHECKSUM_PARTIAL UDP frame.
const UDPChecksumOffset = udpChecksum

// UDP is a view over a UDP header and what follows it.
//
// A checksum field of 0 means the sender computed none (RFC 768): it must
// stay 0 through a rewrite, and a computed checksum of 0 is sent as 0xffff.
type UDP []byte

// IsValid reports whether b starts with a UDP header whose Length is at
// least the header size and fits in the n bytes available (and in b).
func (b UDP) IsValid(n int) bool {
	avail := min(n, len(b))
	if avail < UDPSize {
		return false
	}
	l := int(b.Length())
	return l >= UDPSize && l <= avail
}

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the length of header and data in bytes.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// Payload returns the bytes after the header up to Length, clamped to the
// bytes present.
func (b UDP) Payload() []byte {
	end := min(int(b.Length()), len(b))
	if end < UDPSize {
		return nil
	}
	return b[UDPSize:end]
}

// SetSrcPort sets the source port; the checksum is left alone.
func (b UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDstPort sets the destination port; the checksum is left alone.
func (b UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// SetLength sets the length field.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[udpLength:], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(x uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], x) }
