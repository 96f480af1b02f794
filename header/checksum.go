package header

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the RFC 1071 ones'-complement sum of b, added to
// initial, folded to 16 bits and not complemented. An odd trailing byte is
// summed as if followed by a zero byte. The result is 0 only when initial
// and every byte of b are 0.
//
// Store ^Checksum(...) in a header's checksum field; pass a previous
// result as initial to sum a message in pieces whose lengths (all but the
// last) are even.
func Checksum(b []byte, initial uint16) uint16 {
	// Ones'-complement addition is addition modulo 2^16-1, and 2^16 ≡ 1
	// there, so 64-bit big-endian words can be summed with end-around
	// carry and folded at the end: each word is four 16-bit words.
	acc := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	// Put the last carry back; when there is one, acc wrapped and is
	// small, so this cannot carry again.
	acc += c
	return fold64(acc)
}

// fold64 folds a 64-bit end-around-carry sum to 16 bits; it returns 0 only
// for 0.
func fold64(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff) // at most 33 bits
	s = (s >> 16) + (s & 0xffff)     // at most 0x1fffe
	s = (s >> 16) + (s & 0xffff)     // at most 0x10000
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// ChecksumCombine returns the ones'-complement sum of a and b.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the uncomplemented sum of the IPv4
// pseudo-header of RFC 793 and RFC 768: source and destination address,
// protocol and length (the TCP or UDP length: header plus data).
//
// It is the value a CHECKSUM_PARTIAL frame carries in its L4 checksum
// field, and the initial value for Checksum over the L4 bytes.
func PseudoHeaderChecksum(proto uint8, src, dst [4]byte, totalLen uint16) uint16 {
	s := uint32(src[0])<<8 | uint32(src[1])
	s += uint32(src[2])<<8 | uint32(src[3])
	s += uint32(dst[0])<<8 | uint32(dst[1])
	s += uint32(dst[2])<<8 | uint32(dst[3])
	s += uint32(proto)
	s += uint32(totalLen)
	return fold32(s)
}

// fold32 folds a 32-bit sum of at most a few thousand 16-bit words.
func fold32(s uint32) uint16 {
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// SumUpdate2 returns the uncomplemented sum sum after a 16-bit word of the
// summed data changed from old to new (RFC 1624: S' = S + ~m + m').
func SumUpdate2(sum, old, new uint16) uint16 {
	return ChecksumCombine(ChecksumCombine(sum, ^old), new)
}

// SumUpdateAddr returns the uncomplemented sum sum after an IPv4 address
// of the summed data, aligned on 16 bits, changed from old to new.
func SumUpdateAddr(sum uint16, old, new [4]byte) uint16 {
	s := uint32(sum)
	s += uint32(^(uint16(old[0])<<8 | uint16(old[1])))
	s += uint32(^(uint16(old[2])<<8 | uint16(old[3])))
	s += uint32(new[0])<<8 | uint32(new[1])
	s += uint32(new[2])<<8 | uint32(new[3])
	return fold32(s)
}

// ChecksumUpdate2 returns a checksum field's new value (complemented, as
// stored in the header) after a 16-bit word it covers changed from old to
// new: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m').
func ChecksumUpdate2(xsum, old, new uint16) uint16 {
	return ^SumUpdate2(^xsum, old, new)
}

// ChecksumUpdateAddr returns a checksum field's new value (complemented,
// as stored in the header) after an IPv4 address it covers, aligned on 16
// bits, changed from old to new.
func ChecksumUpdateAddr(xsum uint16, old, new [4]byte) uint16 {
	return ^SumUpdateAddr(^xsum, old, new)
}
