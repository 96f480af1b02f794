package sched

import (
	"encoding/binary"
	"math/bits"
)

// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
// 2012) with c compression and d finalization rounds. The paper's
// SipHash-2-4 is checked against its published test vectors; mh needs
// SipHash-1-3, which is what the kernel's hsiphash() is on 64-bit builds
// (lib/siphash.c: "on 64-bit, we make HalfSipHash1-3 actually be
// SipHash1-3"), truncated to 32 bits. That variant is checked against the
// kernel's own hsiphash test vectors.

type sipState struct{ v0, v1, v2, v3 uint64 }

func newSipState(k0, k1 uint64) sipState {
	return sipState{
		v0: k0 ^ 0x736f6d6570736575, // "somepseu"
		v1: k1 ^ 0x646f72616e646f6d, // "dorandom"
		v2: k0 ^ 0x6c7967656e657261, // "lygenera"
		v3: k1 ^ 0x7465646279746573, // "tedbytes"
	}
}

func (s *sipState) round() {
	s.v0 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 13)
	s.v1 ^= s.v0
	s.v0 = bits.RotateLeft64(s.v0, 32)
	s.v2 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 16)
	s.v3 ^= s.v2
	s.v0 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 21)
	s.v3 ^= s.v0
	s.v2 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 17)
	s.v1 ^= s.v2
	s.v2 = bits.RotateLeft64(s.v2, 32)
}

func (s *sipState) compress(m uint64, c int) {
	s.v3 ^= m
	for range c {
		s.round()
	}
	s.v0 ^= m
}

func (s *sipState) finalize(d int) uint64 {
	s.v2 ^= 0xff
	for range d {
		s.round()
	}
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

// sipHash is SipHash-c-d of msg under the key (k0, k1), the key's 16 bytes
// read as two little-endian words.
func sipHash(c, d int, k0, k1 uint64, msg []byte) uint64 {
	s := newSipState(k0, k1)
	n := len(msg)
	for len(msg) >= 8 {
		s.compress(binary.LittleEndian.Uint64(msg), c)
		msg = msg[8:]
	}
	var tail [8]byte
	copy(tail[:], msg)
	last := binary.LittleEndian.Uint64(tail[:]) | uint64(n)<<56
	s.compress(last, c)
	return s.finalize(d)
}

// hsiphash32 is the kernel's 64-bit hsiphash(&v, sizeof(v), key) for one
// u32 v: SipHash-1-3 of the four bytes of v in host (little-endian) order,
// truncated to 32 bits. It does not allocate.
func hsiphash32(k0, k1 uint64, v uint32) uint32 {
	s := newSipState(k0, k1)
	s.compress(uint64(v)|4<<56, 1)
	return uint32(s.finalize(3))
}
