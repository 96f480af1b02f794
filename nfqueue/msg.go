package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Verdicts (netfilter.h).
const (
	Drop   uint32 = 0 // NF_DROP
	Accept uint32 = 1 // NF_ACCEPT
)

// Config commands (NFQA_CFG_CMD), for AppendConfigCmd.
const (
	CmdBind   uint8 = 1 // NFQNL_CFG_CMD_BIND
	CmdUnbind uint8 = 2 // NFQNL_CFG_CMD_UNBIND
)

// Copy modes (NFQA_CFG_PARAMS), for AppendConfigParams.
const (
	CopyNone   uint8 = 0 // NFQNL_COPY_NONE
	CopyMeta   uint8 = 1 // NFQNL_COPY_META
	CopyPacket uint8 = 2 // NFQNL_COPY_PACKET
)

// Netlink and nfnetlink framing.
//
//	nlmsghdr (host order)          nfgenmsg
//	+--------+--------+--------+   +--------+---------+--------+
//	| len 32 | type 16| flags16|   | family | version | res_id |
//	+--------+--------+--------+   |   8    |    8    | be 16  |
//	| seq 32 | pid 32 |            +--------+---------+--------+
//	+--------+--------+
//
// Attributes follow as TLVs (len and type in host order, len counting the
// 4-byte header, each padded to 4 bytes); their integers are big endian.
const (
	nlmsgHdrLen = 16
	nfgenLen    = 4
	nlaHdrLen   = 4

	nlmLen  = 0
	nlmType = 4
	nlmSeq  = 8

	nlmFRequest = 0x1
	nlmFAck     = 0x4
	nlmFCreate  = 0x400
	nlmFAppend  = 0x800

	nlmsgError = 2 // NLMSG_ERROR

	nlaFNested = 0x8000
	// nlaTypeMask drops NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff

	nfnetlinkV0 = 0
	afUnspec    = 0
	afInet      = 2
)

// Message types: NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_*.
const (
	subsysQueue      = 3
	msgPacket        = subsysQueue << 8 // | NFQNL_MSG_PACKET (0)
	msgVerdict       = subsysQueue<<8 | 1
	msgConfig        = subsysQueue<<8 | 2
	msgVerdictBatch  = subsysQueue<<8 | 3
	verdictMsgLength = nlmsgHdrLen + nfgenLen + nlaHdrLen + 8
)

// Attribute types (enum nfqnl_attr_type, enum nfqnl_attr_config).
const (
	attrPacketHdr  = 1  // NFQA_PACKET_HDR: be32 packet_id, be16 hw_protocol, u8 hook
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR: be32 verdict, be32 id
	attrMark       = 3  // NFQA_MARK: be32
	attrIfIndexIn  = 5  // NFQA_IFINDEX_INDEV: be32
	attrHwAddr     = 9  // NFQA_HWADDR: be16 hw_addrlen, u16 pad, u8 hw_addr[8]
	attrPayload    = 10 // NFQA_PAYLOAD

	attrCfgCmd      = 1 // NFQA_CFG_CMD: u8 command, u8 pad, be16 pf
	attrCfgParams   = 2 // NFQA_CFG_PARAMS: be32 copy_range, u8 copy_mode (packed)
	attrCfgQueueMax = 3 // NFQA_CFG_QUEUE_MAXLEN: be32

	packetHdrLen = 7
	hwAddrHdrLen = 4
)

// ErrMalformed is wrapped by every error ParsePacket returns.
var ErrMalformed = errors.New("nfqueue: malformed packet message")

// ParsePacket's errors, made once so that returning one allocates nothing.
var (
	errShort        = fmt.Errorf("%w: shorter than nlmsghdr and nfgenmsg", ErrMalformed)
	errLength       = fmt.Errorf("%w: nlmsg_len outside the buffer", ErrMalformed)
	errType         = fmt.Errorf("%w: not NFQNL_MSG_PACKET", ErrMalformed)
	errAttrHeader   = fmt.Errorf("%w: truncated attribute header", ErrMalformed)
	errAttrLength   = fmt.Errorf("%w: attribute length past the message", ErrMalformed)
	errAttrShort    = fmt.Errorf("%w: attribute too short for its type", ErrMalformed)
	errNoPacketHdr  = fmt.Errorf("%w: no NFQA_PACKET_HDR", ErrMalformed)
	errNoPayload    = fmt.Errorf("%w: no NFQA_PAYLOAD", ErrMalformed)
	errEmptyPayload = fmt.Errorf("%w: empty NFQA_PAYLOAD", ErrMalformed)
)

// Packet is one queued packet.
type Packet struct {
	ID        uint32  // NFQA_PACKET_HDR packet_id: what Verdict takes
	HwProto   uint16  // NFQA_PACKET_HDR hw_protocol, host order (0x0800 for IPv4)
	Hook      uint8   // netfilter hook (0: NF_INET_PRE_ROUTING)
	Mark      uint32  // NFQA_MARK, 0 when absent
	InIf      uint32  // NFQA_IFINDEX_INDEV, 0 when absent
	HwAddr    [6]byte // NFQA_HWADDR: the frame's source MAC
	HasHwAddr bool    // NFQA_HWADDR was present with a 6-byte address
	// Payload is the IP packet, from its IPv4 header on. It aliases the
	// buffer given to ParsePacket (for Conn.Read, the Conn's read
	// buffer, valid until the next Read) and has no spare capacity, so
	// an append never overwrites what follows it.
	Payload []byte
}

// align4 rounds a netlink length up to the 4-byte alignment.
func align4(n int) int { return (n + 3) &^ 3 }

// ParsePacket decodes one netlink message of type NFQNL_MSG_PACKET,
// starting at its nlmsghdr, into p. Bytes after nlmsg_len are ignored.
// It allocates nothing; every malformed input returns an error wrapping
// ErrMalformed, and p's contents are then unspecified. Unknown attributes
// are skipped; of repeated ones the last wins.
func ParsePacket(msg []byte, p *Packet) error {
	if len(msg) < nlmsgHdrLen+nfgenLen {
		return errShort
	}
	n := binary.NativeEndian.Uint32(msg[nlmLen:])
	if n < nlmsgHdrLen+nfgenLen || uint64(n) > uint64(len(msg)) {
		return errLength
	}
	if binary.NativeEndian.Uint16(msg[nlmType:]) != msgPacket {
		return errType
	}
	*p = Packet{}
	haveHdr, havePayload := false, false
	attrs := msg[nlmsgHdrLen+nfgenLen : n]
	for len(attrs) > 0 {
		if len(attrs) < nlaHdrLen {
			return errAttrHeader
		}
		alen := int(binary.NativeEndian.Uint16(attrs))
		if alen < nlaHdrLen || alen > len(attrs) {
			return errAttrLength
		}
		v := attrs[nlaHdrLen:alen:alen]
		switch binary.NativeEndian.Uint16(attrs[2:]) & nlaTypeMask {
		case attrPacketHdr:
			if len(v) < packetHdrLen {
				return errAttrShort
			}
			p.ID = binary.BigEndian.Uint32(v)
			p.HwProto = binary.BigEndian.Uint16(v[4:])
			p.Hook = v[6]
			haveHdr = true
		case attrMark:
			if len(v) < 4 {
				return errAttrShort
			}
			p.Mark = binary.BigEndian.Uint32(v)
		case attrIfIndexIn:
			if len(v) < 4 {
				return errAttrShort
			}
			p.InIf = binary.BigEndian.Uint32(v)
		case attrHwAddr:
			if len(v) < hwAddrHdrLen {
				return errAttrShort
			}
			al := int(binary.BigEndian.Uint16(v))
			if hwAddrHdrLen+al > len(v) {
				return errAttrShort
			}
			// Other lengths are other link layers: no Ethernet source.
			p.HasHwAddr = al == len(p.HwAddr)
			if p.HasHwAddr {
				copy(p.HwAddr[:], v[hwAddrHdrLen:])
			}
		case attrPayload:
			if len(v) == 0 {
				return errEmptyPayload
			}
			p.Payload = v
			havePayload = true
		}
		// The last attribute's padding may be cut by nlmsg_len.
		attrs = attrs[min(align4(alen), len(attrs)):]
	}
	if !haveHdr {
		return errNoPacketHdr
	}
	if !havePayload {
		return errNoPayload
	}
	return nil
}

// appendHeader appends an nlmsghdr with a zero length (finish sets it)
// and an nfgenmsg.
func appendHeader(b []byte, typ, flags uint16, seq uint32, family uint8, resID uint16) []byte {
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // pid: the kernel fills in ours
	b = append(b, family, nfnetlinkV0)
	return binary.BigEndian.AppendUint16(b, resID)
}

// finish sets the nlmsg_len of the message that starts at b[start:].
func finish(b []byte, start int) []byte {
	binary.NativeEndian.PutUint32(b[start+nlmLen:], uint32(len(b)-start))
	return b
}

// appendAttr appends an attribute header for a value of n bytes; the
// caller appends the value, then pad.
func appendAttr(b []byte, typ uint16, n int) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+n))
	return binary.NativeEndian.AppendUint16(b, typ)
}

// pad appends zeros up to the 4-byte alignment of b's length relative to
// start.
func pad(b []byte, start int) []byte {
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendAttrU32(b []byte, typ uint16, v uint32) []byte {
	return binary.BigEndian.AppendUint32(appendAttr(b, typ, 4), v)
}

// AppendConfigCmd appends an NFQNL_MSG_CONFIG message carrying
// NFQA_CFG_CMD cmd (CmdBind, CmdUnbind) for queue, flagged
// NLM_F_REQUEST|NLM_F_ACK so that the kernel answers with an ACK or an
// error of sequence number seq.
func AppendConfigCmd(b []byte, seq uint32, queue uint16, cmd uint8) []byte {
	start := len(b)
	b = appendHeader(b, msgConfig, nlmFRequest|nlmFAck, seq, afUnspec, queue)
	b = appendAttr(b, attrCfgCmd, 4)
	b = append(b, cmd, 0)
	b = binary.BigEndian.AppendUint16(b, afInet) // pf: ignored since Linux 3.8
	return finish(b, start)
}

// AppendConfigParams appends an NFQNL_MSG_CONFIG message setting queue's
// copy mode and range (NFQA_CFG_PARAMS) and, unless maxLen is 0, its
// length limit (NFQA_CFG_QUEUE_MAXLEN), flagged NLM_F_REQUEST|NLM_F_ACK.
func AppendConfigParams(b []byte, seq uint32, queue uint16, mode uint8, copyRange, maxLen uint32) []byte {
	start := len(b)
	b = appendHeader(b, msgConfig, nlmFRequest|nlmFAck, seq, afUnspec, queue)
	b = appendAttr(b, attrCfgParams, 5) // packed: be32 copy_range, u8 copy_mode
	b = binary.BigEndian.AppendUint32(b, copyRange)
	b = pad(append(b, mode), start)
	if maxLen != 0 {
		b = appendAttrU32(b, attrCfgQueueMax, maxLen)
	}
	return finish(b, start)
}

// AppendVerdict appends an NFQNL_MSG_VERDICT message giving packet id of
// queue the verdict (Drop, Accept). It asks for no ACK: the kernel only
// answers when the verdict fails (an unknown id, say).
func AppendVerdict(b []byte, seq uint32, queue uint16, id, verdict uint32) []byte {
	return appendVerdict(b, msgVerdict, seq, queue, id, verdict)
}

// AppendVerdictBatch appends an NFQNL_MSG_VERDICT_BATCH message giving
// every packet of queue with an ID up to and including id the verdict.
// Like AppendVerdict it asks for no ACK.
func AppendVerdictBatch(b []byte, seq uint32, queue uint16, id, verdict uint32) []byte {
	return appendVerdict(b, msgVerdictBatch, seq, queue, id, verdict)
}

func appendVerdict(b []byte, typ uint16, seq uint32, queue uint16, id, verdict uint32) []byte {
	start := len(b)
	b = appendHeader(b, typ, nlmFRequest, seq, afUnspec, queue)
	b = appendAttr(b, attrVerdictHdr, 8)
	b = binary.BigEndian.AppendUint32(b, verdict)
	b = binary.BigEndian.AppendUint32(b, id)
	return finish(b, start)
}
