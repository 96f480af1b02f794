package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/uvs-project/uvs/header"
	"golang.org/x/sys/unix"
)

// nf_tables rules ending in the x_tables NFQUEUE target (nft_compat),
// for kernels without nft_queue. nft can list such rules but not create
// them, so they are sent as one nfnetlink batch:
//
//	NFNL_MSG_BATCH_BEGIN
//	NFT_MSG_NEWRULE table <t> chain prerouting: the TCP rule
//	NFT_MSG_NEWRULE table <t> chain prerouting: the UDP rule
//	NFNL_MSG_BATCH_END
//
// Each rule is a list of expressions working on register 1:
//
//	meta load mark => reg 1; lookup reg 1 set marks
//	meta load l4proto => reg 1; cmp eq reg 1 <proto>
//	(TCP) payload load 1b @ transport header + 13 => reg 1
//	(TCP) bitwise reg 1 = (reg 1 & 0x16) ^ 0; cmp eq reg 1 0x02
//	target NFQUEUE rev 3 { queuenum <Q>, queues_total 1, flags bypass }
const (
	tcpFlagsOffset = 13 // the TCP header's flags byte

	// xt_NFQ_info_v3: u16 queuenum, u16 queues_total, u16 flags, in host
	// order, padded to XT_ALIGN (8).
	nfqueueTargetRev = 3
	nfqFlagBypass    = 0x01
	nfqInfoLen       = 8
)

// appendCompatRules appends the batch that adds the two queue rules to
// chain prerouting of table ip <table>, with sequence numbers seq to
// seq+3; only the rules ask for ACKs.
func appendCompatRules(b []byte, seq uint32, table string, queue uint16) []byte {
	start := len(b)
	b = finish(appendHeader(b, unix.NFNL_MSG_BATCH_BEGIN, nlmFRequest, seq, afUnspec, unix.NFNL_SUBSYS_NFTABLES), start)
	b = appendCompatRule(b, seq+1, table, queue, header.ProtoTCP)
	b = appendCompatRule(b, seq+2, table, queue, header.ProtoUDP)
	start = len(b)
	return finish(appendHeader(b, unix.NFNL_MSG_BATCH_END, nlmFRequest, seq+3, afUnspec, unix.NFNL_SUBSYS_NFTABLES), start)
}

func appendCompatRule(b []byte, seq uint32, table string, queue uint16, proto uint8) []byte {
	start := len(b)
	b = appendHeader(b, unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWRULE,
		nlmFRequest|nlmFAck|nlmFCreate|nlmFAppend, seq, unix.NFPROTO_IPV4, 0)
	b = appendAttrString(b, unix.NFTA_RULE_TABLE, table)
	b = appendAttrString(b, unix.NFTA_RULE_CHAIN, "prerouting")
	list := len(b)
	b = appendAttr(b, unix.NFTA_RULE_EXPRESSIONS|nlaFNested, 0)

	b = appendExpr(b, "meta", func(b []byte) []byte {
		b = appendAttrU32(b, unix.NFTA_META_KEY, unix.NFT_META_MARK)
		return appendAttrU32(b, unix.NFTA_META_DREG, unix.NFT_REG_1)
	})
	b = appendExpr(b, "lookup", func(b []byte) []byte {
		b = appendAttrString(b, unix.NFTA_LOOKUP_SET, "marks")
		return appendAttrU32(b, unix.NFTA_LOOKUP_SREG, unix.NFT_REG_1)
	})
	b = appendExpr(b, "meta", func(b []byte) []byte {
		b = appendAttrU32(b, unix.NFTA_META_KEY, unix.NFT_META_L4PROTO)
		return appendAttrU32(b, unix.NFTA_META_DREG, unix.NFT_REG_1)
	})
	b = appendCmpEq(b, proto)
	if proto == header.ProtoTCP {
		b = appendExpr(b, "payload", func(b []byte) []byte {
			b = appendAttrU32(b, unix.NFTA_PAYLOAD_DREG, unix.NFT_REG_1)
			b = appendAttrU32(b, unix.NFTA_PAYLOAD_BASE, unix.NFT_PAYLOAD_TRANSPORT_HEADER)
			b = appendAttrU32(b, unix.NFTA_PAYLOAD_OFFSET, tcpFlagsOffset)
			return appendAttrU32(b, unix.NFTA_PAYLOAD_LEN, 1)
		})
		b = appendExpr(b, "bitwise", func(b []byte) []byte {
			b = appendAttrU32(b, unix.NFTA_BITWISE_SREG, unix.NFT_REG_1)
			b = appendAttrU32(b, unix.NFTA_BITWISE_DREG, unix.NFT_REG_1)
			b = appendAttrU32(b, unix.NFTA_BITWISE_LEN, 1)
			b = appendData(b, unix.NFTA_BITWISE_MASK, header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst)
			return appendData(b, unix.NFTA_BITWISE_XOR, 0)
		})
		b = appendCmpEq(b, header.TCPFlagSyn)
	}
	b = appendExpr(b, "target", func(b []byte) []byte {
		b = appendAttrString(b, unix.NFTA_TARGET_NAME, "NFQUEUE")
		b = appendAttrU32(b, unix.NFTA_TARGET_REV, nfqueueTargetRev)
		b = appendAttr(b, unix.NFTA_TARGET_INFO, nfqInfoLen)
		b = binary.NativeEndian.AppendUint16(b, queue)
		b = binary.NativeEndian.AppendUint16(b, 1)
		b = binary.NativeEndian.AppendUint16(b, nfqFlagBypass)
		return binary.NativeEndian.AppendUint16(b, 0)
	})
	b = finishAttr(b, list)
	return finish(b, start)
}

// appendExpr appends one NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA }.
func appendExpr(b []byte, name string, data func([]byte) []byte) []byte {
	elem := len(b)
	b = appendAttr(b, unix.NFTA_LIST_ELEM|nlaFNested, 0)
	b = appendAttrString(b, unix.NFTA_EXPR_NAME, name)
	d := len(b)
	b = appendAttr(b, unix.NFTA_EXPR_DATA|nlaFNested, 0)
	b = finishAttr(data(b), d)
	return finishAttr(b, elem)
}

// appendCmpEq appends `cmp eq reg 1 v` for a one-byte v.
func appendCmpEq(b []byte, v uint8) []byte {
	return appendExpr(b, "cmp", func(b []byte) []byte {
		b = appendAttrU32(b, unix.NFTA_CMP_SREG, unix.NFT_REG_1)
		b = appendAttrU32(b, unix.NFTA_CMP_OP, unix.NFT_CMP_EQ)
		return appendData(b, unix.NFTA_CMP_DATA, v)
	})
}

// appendData appends typ { NFTA_DATA_VALUE v } for a one-byte v.
func appendData(b []byte, typ uint16, v uint8) []byte {
	start := len(b)
	b = appendAttr(b, typ|nlaFNested, 0)
	b = appendAttr(b, unix.NFTA_DATA_VALUE, 1)
	b = pad(append(b, v), start)
	return finishAttr(b, start)
}

// appendAttrString appends a NUL-terminated string attribute, padded.
func appendAttrString(b []byte, typ uint16, s string) []byte {
	start := len(b)
	b = appendAttr(b, typ, len(s)+1)
	b = append(append(b, s...), 0)
	return pad(b, start)
}

// finishAttr sets the length of the nested attribute at b[start:].
func finishAttr(b []byte, start int) []byte {
	binary.NativeEndian.PutUint16(b[start:], uint16(len(b)-start))
	return b
}

// addCompatRules sends the compat rules' batch from a socket made in the
// Rules' namespace and checks the kernel's ACKs.
func (r *Rules) addCompatRules() error {
	var fd int
	if err := r.nft.In(func() (err error) {
		fd, err = openSocket()
		return err
	}); err != nil {
		return fmt.Errorf("nfqueue: compat rules: %w", err)
	}
	defer unix.Close(fd)
	const seq = 1
	if _, err := unix.Write(fd, appendCompatRules(nil, seq, r.table, r.queue)); err != nil {
		return fmt.Errorf("nfqueue: compat rules: %w", os.NewSyscallError("write", err))
	}
	if err := awaitAcks(fd, make([]byte, 8192), seq, seq+3, 2, nil); err != nil {
		var ae *ackError
		if errors.As(err, &ae) {
			return fmt.Errorf("nfqueue: add NFQUEUE target rules to table ip %s: %w", r.table, ae.errno)
		}
		return fmt.Errorf("nfqueue: compat rules: %w", err)
	}
	return nil
}
