package header

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// refChecksum is RFC 1071 section 4.1, the obvious way: 16-bit words into
// a 32-bit accumulator, odd byte padded with zero, carries folded at the
// end.
func refChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestChecksumEveryLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 9001+8)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for n := 0; n <= 9001; n++ {
		// Vary the start so that every alignment is exercised.
		off := n % 8
		b := buf[off : off+n]
		initial := uint16(rng.Uint32())
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Fatalf("Checksum(len %d, off %d, initial %#04x) = %#04x, want %#04x", n, off, initial, got, want)
		}
	}
}

func TestChecksumEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fill := []func(int) byte{
		func(int) byte { return 0 },
		func(int) byte { return 0xff },
		func(i int) byte { return byte(i) },
		func(int) byte { return byte(rng.Uint32()) },
		// Words that are all 0xffff but one: sums that land on the
		// ones'-complement zeros.
		func(i int) byte {
			if i == 3 {
				return 0xfe
			}
			return 0xff
		},
	}
	// Lengths around the 32- and 8-byte unrolls.
	var lengths []int
	for _, base := range []int{0, 8, 32, 64, 256, 1500, 65535} {
		for d := -9; d <= 9; d++ {
			if base+d >= 0 {
				lengths = append(lengths, base+d)
			}
		}
	}
	for fi, f := range fill {
		for _, n := range lengths {
			b := make([]byte, n)
			for i := range b {
				b[i] = f(i)
			}
			for _, initial := range []uint16{0, 1, 0xfffe, 0xffff} {
				if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
					t.Errorf("fill %d len %d initial %#04x: Checksum = %#04x, want %#04x", fi, n, initial, got, want)
				}
			}
		}
	}
}

func TestChecksumCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cut := rng.IntN(len(b)+1) &^ 1 // even split
		got := ChecksumCombine(Checksum(b[:cut], 0), Checksum(b[cut:], 0))
		if want := refChecksum(b, 0); got != want {
			t.Fatalf("combine at %d of %d: %#04x, want %#04x", cut, len(b), got, want)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 10000 {
		var src, dst [4]byte
		binary.BigEndian.PutUint32(src[:], rng.Uint32())
		binary.BigEndian.PutUint32(dst[:], rng.Uint32())
		proto := uint8(rng.Uint32())
		length := uint16(rng.Uint32())
		ph := make([]byte, 0, 12)
		ph = append(ph, src[:]...)
		ph = append(ph, dst[:]...)
		ph = append(ph, 0, proto)
		ph = binary.BigEndian.AppendUint16(ph, length)
		if got, want := PseudoHeaderChecksum(proto, src, dst, length), refChecksum(ph, 0); got != want {
			t.Fatalf("PseudoHeaderChecksum(%d, %v, %v, %d) = %#04x, want %#04x", proto, src, dst, length, got, want)
		}
	}
}

// TestIncrementalUpdate changes a word or an address of a random message
// and checks the RFC 1624 updates against a full recomputation, for both a
// complemented field (ChecksumUpdate*) and an uncomplemented sum
// (SumUpdate*).
func TestIncrementalUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 100000 {
		n := 4 + 2*rng.IntN(40)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		// Some messages full of 0xff and 0x00 to hit -0 and +0.
		if i%10 == 0 {
			for j := range b {
				b[j] = byte(rng.IntN(2)) * 0xff
			}
		}
		sum := refChecksum(b, 0)
		xsum := ^sum
		at := 2 * rng.IntN(n/2-1)
		if rng.IntN(2) == 0 {
			old := binary.BigEndian.Uint16(b[at:])
			new := uint16(rng.Uint32())
			if i%7 == 0 {
				new = ^old
			}
			binary.BigEndian.PutUint16(b[at:], new)
			want := refChecksum(b, 0)
			if got := SumUpdate2(sum, old, new); !sameSum(got, want) {
				t.Fatalf("SumUpdate2(%#04x, %#04x, %#04x) = %#04x, want %#04x", sum, old, new, got, want)
			}
			if got := ChecksumUpdate2(xsum, old, new); !sameSum(^got, want) {
				t.Fatalf("ChecksumUpdate2(%#04x, %#04x, %#04x) = %#04x, want %#04x", xsum, old, new, got, ^want)
			}
			continue
		}
		old := [4]byte(b[at : at+4])
		var new [4]byte
		binary.BigEndian.PutUint32(new[:], rng.Uint32())
		copy(b[at:], new[:])
		want := refChecksum(b, 0)
		if got := SumUpdateAddr(sum, old, new); !sameSum(got, want) {
			t.Fatalf("SumUpdateAddr(%#04x, %v, %v) = %#04x, want %#04x", sum, old, new, got, want)
		}
		if got := ChecksumUpdateAddr(xsum, old, new); !sameSum(^got, want) {
			t.Fatalf("ChecksumUpdateAddr(%#04x, %v, %v) = %#04x, want %#04x", xsum, old, new, got, ^want)
		}
	}
}

// sameSum reports whether an incrementally updated sum got equals the
// recomputed sum want. RFC 1624 eqn. 3 gives exactly the recomputed value
// (end-around carry never yields +0 from non-zero data), except for an
// all-zero message, whose sum is +0 but whose update may yield -0.
func sameSum(got, want uint16) bool {
	return got == want || want == 0 && got == 0xffff
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 40, 64, 128, 256, 1500, 9000, 65535} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				Checksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumUpdateAddr(b *testing.B) {
	b.ReportAllocs()
	x := uint16(0x1234)
	old, new := [4]byte{10, 0, 0, 1}, [4]byte{192, 168, 1, 2}
	for b.Loop() {
		x = ChecksumUpdateAddr(x, old, new)
	}
}
