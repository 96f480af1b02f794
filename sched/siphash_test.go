package sched

import (
	"math/rand/v2"
	"testing"
)

// The test key of the SipHash reference implementation (bytes 00..0f) and
// its published SipHash-2-4 outputs for the messages 00, 00 01, ... of
// lengths 0..63 (veorq/SipHash vectors.h, also in the kernel's
// lib/tests/siphash_kunit.c).
const sipK0, sipK1 = 0x0706050403020100, 0x0f0e0d0c0b0a0908

var sipHash24Vectors = [64]uint64{
	0x726fdb47dd0e0e31, 0x74f839c593dc67fd, 0x0d6c8009d9a94f5a,
	0x85676696d7fb7e2d, 0xcf2794e0277187b7, 0x18765564cd99a68d,
	0xcbc9466e58fee3ce, 0xab0200f58b01d137, 0x93f5f5799a932462,
	0x9e0082df0ba9e4b0, 0x7a5dbbc594ddb9f3, 0xf4b32f46226bada7,
	0x751e8fbc860ee5fb, 0x14ea5627c0843d90, 0xf723ca908e7af2ee,
	0xa129ca6149be45e5, 0x3f2acc7f57c29bdb, 0x699ae9f52cbe4794,
	0x4bc1b3f0968dd39c, 0xbb6dc91da77961bd, 0xbed65cf21aa2ee98,
	0xd0f2cbb02e3b67c7, 0x93536795e3a33e88, 0xa80c038ccd5ccec8,
	0xb8ad50c6f649af94, 0xbce192de8a85b8ea, 0x17d835b85bbb15f3,
	0x2f2e6163076bcfad, 0xde4daaaca71dc9a5, 0xa6a2506687956571,
	0xad87a3535c49ef28, 0x32d892fad841c342, 0x7127512f72f27cce,
	0xa7f32346f95978e3, 0x12e0b01abb051238, 0x15e034d40fa197ae,
	0x314dffbe0815a3b4, 0x027990f029623981, 0xcadcd4e59ef40c4d,
	0x9abfd8766a33735c, 0x0e3ea96b5304a7d0, 0xad0c42d6fc585992,
	0x187306c89bc215a9, 0xd4a60abcf3792b95, 0xf935451de4f21df2,
	0xa9538f0419755787, 0xdb9acddff56ca510, 0xd06c98cd5c0975eb,
	0xe612a3cb9ecba951, 0xc766e62cfcadaf96, 0xee64435a9752fe72,
	0xa192d576b245165a, 0x0a8787bf8ecb74b2, 0x81b3e73d20b49b6f,
	0x7fa8220ba3b2ecea, 0x245731c13ca42499, 0xb78dbfaf3a8d83bd,
	0xea1ad565322a1a0b, 0x60e61c23a3795013, 0x6606d7e446282b93,
	0x6ca4ecb15c5f91e1, 0x9f626da15c9625f3, 0xe51b38608ef25f57,
	0x958a324ceb064572,
}

// hsiphashVectors are the kernel's expected 64-bit hsiphash() outputs for
// the same key and messages (lib/tests/siphash_kunit.c, BITS_PER_LONG ==
// 64): SipHash-1-3 truncated to 32 bits.
var hsiphashVectors = [64]uint32{
	0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67,
	0xc59f22a7, 0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352,
	0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c,
	0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
	0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4,
	0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91,
	0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
	0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
	0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0,
	0x73f0bce6, 0x70a7e980, 0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148,
	0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
}

func TestSipHashVectors(t *testing.T) {
	var msg [64]byte
	for i := range msg {
		msg[i] = byte(i)
	}
	for n := range 64 {
		if got := sipHash(2, 4, sipK0, sipK1, msg[:n]); got != sipHash24Vectors[n] {
			t.Errorf("SipHash-2-4, %d bytes: %#016x, want %#016x", n, got, sipHash24Vectors[n])
		}
		if got := uint32(sipHash(1, 3, sipK0, sipK1, msg[:n])); got != hsiphashVectors[n] {
			t.Errorf("hsiphash, %d bytes: %#08x, want %#08x", n, got, hsiphashVectors[n])
		}
	}
	// The kernel's hsiphash_1u32(0x03020100) is vector 4.
	if got := hsiphash32(sipK0, sipK1, 0x03020100); got != hsiphashVectors[4] {
		t.Errorf("hsiphash32(0x03020100) = %#08x, want %#08x", got, hsiphashVectors[4])
	}
}

// TestHSipHash32 checks the allocation-free one-word form against the
// general one on random keys and words.
func TestHSipHash32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		k0, k1, v := r.Uint64(), r.Uint64(), r.Uint32()
		b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		if got, want := hsiphash32(k0, k1, v), uint32(sipHash(1, 3, k0, k1, b)); got != want {
			t.Fatalf("hsiphash32(%#x, %#x, %#x) = %#x, want %#x", k0, k1, v, got, want)
		}
	}
}
