package header

import "encoding/binary"

// ICMPv4 message header (RFC 792). The second word depends on the type:
// identifier and sequence number for echo, the next-hop MTU in its low
// half for destination unreachable code 4 (RFC 1191), unused for the other
// errors, which then quote the offending IP header and the first 8 bytes
// of its payload.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Identifier          |        Sequence Number        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Data ...
//	+-+-+-+-+-
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpID       = 4
	icmpSeq      = 6
	icmpMTU      = 6
)

// ICMPv4MinimumSize is the size of the fixed ICMPv4 header.
const ICMPv4MinimumSize = 8

// ICMPv4 types.
const (
	ICMPv4EchoReply       = 0
	ICMPv4DestUnreachable = 3
	ICMPv4SourceQuench    = 4
	ICMPv4Redirect        = 5
	ICMPv4Echo            = 8
	ICMPv4TimeExceeded    = 11
	ICMPv4ParamProblem    = 12
)

// ICMPv4 destination unreachable codes used by uvs.
const (
	ICMPv4PortUnreachable = 3
	ICMPv4FragNeeded      = 4
)

// ICMPv4 is a view over an ICMPv4 message.
type ICMPv4 []byte

// IsValid reports whether b holds at least the fixed header.
func (b ICMPv4) IsValid() bool { return len(b) >= ICMPv4MinimumSize }

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// ID returns the identifier of an echo or echo reply.
func (b ICMPv4) ID() uint16 { return binary.BigEndian.Uint16(b[icmpID:]) }

// Seq returns the sequence number of an echo or echo reply.
func (b ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// MTU returns the next-hop MTU of a fragmentation-needed message
// (destination unreachable, code 4).
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpMTU:]) }

// Payload returns the bytes after the fixed header: echo data, or the
// quoted datagram of an error.
func (b ICMPv4) Payload() []byte { return b[ICMPv4MinimumSize:] }

// IsError reports whether the type is an error message (RFC 1812 4.3.2.1:
// destination unreachable, source quench, redirect, time exceeded,
// parameter problem), which quotes the datagram it reports on.
func (b ICMPv4) IsError() bool {
	switch b.Type() {
	case ICMPv4DestUnreachable, ICMPv4SourceQuench, ICMPv4Redirect,
		ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// SetType sets the message type; the checksum is left alone.
func (b ICMPv4) SetType(t uint8) { b[icmpType] = t }

// SetCode sets the message code; the checksum is left alone.
func (b ICMPv4) SetCode(c uint8) { b[icmpCode] = c }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(x uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], x) }

// SetID sets the identifier of an echo or echo reply.
func (b ICMPv4) SetID(id uint16) { binary.BigEndian.PutUint16(b[icmpID:], id) }

// SetSeq sets the sequence number of an echo or echo reply.
func (b ICMPv4) SetSeq(s uint16) { binary.BigEndian.PutUint16(b[icmpSeq:], s) }

// SetMTU sets the next-hop MTU of a fragmentation-needed message.
func (b ICMPv4) SetMTU(mtu uint16) { binary.BigEndian.PutUint16(b[icmpMTU:], mtu) }

// CalculateChecksum returns the checksum computed from scratch over the
// whole message, with the checksum field taken as 0.
func (b ICMPv4) CalculateChecksum() uint16 {
	s := Checksum(b[:icmpChecksum], 0)
	return ^Checksum(b[icmpChecksum+2:], s)
}
