package sched

import (
	"math"
	"net/netip"
	"testing"
)

// Expected buckets, worked by hand from the kernel's formulas (Linux 4.19
// and mainline): ip_vs_sh_hashkey is
// (offset + hash_32(ntohs(port) + ntohl(addr_fold), 8)) & 255,
// ip_vs_dh_hashkey hash_32(ntohl(addr_fold), 8) and ip_vs_lblc_hashkey /
// ip_vs_lblcr_hashkey hash_32(ntohl(addr_fold), 10), where include/linux/
// hash.h has hash_32(v, bits) = (u32)(v * 0x61C88647) >> (32 - bits).
//
// For 10.0.0.i, v = 0x0a000000 + i, and mod 2^32
// 0x0a000000 * 0x61C88647 = (0x0a * 0x47 mod 256) << 24 = 0xc6000000, so
// v * G = i * 0x61C88647 + 0xc6000000:
//
//	10.0.0.1: 0x61c88647 + 0xc6000000 = 0x27c88647: byte 0x27 = 39,  10 bits 0x09f = 159
//	10.0.0.2: 0xc3910c8e + 0xc6000000 = 0x89910c8e: byte 0x89 = 137, 10 bits 0x226 = 550
//	10.0.0.3: 0x255992d5 + 0xc6000000 = 0xeb5992d5: byte 0xeb = 235, 10 bits 0x3ad = 941
//
// With sh-port, port 1 makes v = 0x0a000002 (bucket 137) and port 257
// v = 0x0a000102: 0x102 * G = 0xc8864700 + 0xc3910c8e = 0x8c17538e, plus
// 0xc6000000 gives 0x5217538e, bucket 0x52 = 82. 192.168.77.1 =
// 0xc0a84d01: the product is 0x10c3e147, bucket 16 (under the low-byte
// formula of old kernels it shared 10.0.0.1's bucket 177; now every octet
// counts). The fallback probe at roffset 39 for 10.0.0.1 looks at
// (39 + 39) & 255 = 78.
var kernelBuckets = []struct {
	addr   string
	port   uint16
	offset uint32
	sh     uint32 // ip_vs_sh_hashkey (dh: port 0, offset 0)
	lblc   uint32 // ip_vs_lblc_hashkey, port and offset unused
}{
	{"10.0.0.1", 0, 0, 39, 159},
	{"10.0.0.2", 0, 0, 137, 550},
	{"10.0.0.3", 0, 0, 235, 941},
	{"192.168.77.1", 0, 0, 16, 67},
	{"203.0.113.1", 0, 0, 50, 200},  // 0xcb007101 * G = 0x320ddd47
	{"203.0.113.2", 0, 0, 147, 591}, // 0xcb007102 * G = 0x93d6638e
	{"0.0.0.1", 0, 0, 97, 391},      // G itself: 0x61c88647
	{"10.0.0.1", 1, 0, 137, 550},    // port + address: as 10.0.0.2
	{"10.0.0.1", 257, 0, 82, 0},
	{"10.0.0.1", 0, 39, 78, 0},  // first fallback probe
	{"10.0.0.1", 0, 250, 33, 0}, // (250 + 39) & 255
	// 2001:db8::1:0:0:5 folds to 0x20010db8 ^ 0x00010000 ^ 0x5 =
	// 0x20000dbd; times G that is 0x3fdcbd6b.
	{"2001:db8::1:0:0:5", 0, 0, 63, 255},
}

func TestSHBuckets(t *testing.T) {
	for _, tc := range kernelBuckets {
		fold := addrFold(netip.MustParseAddr(tc.addr))
		if got := shHash(fold, tc.port, tc.offset); got != tc.sh {
			t.Errorf("sh bucket of %s port %d offset %d = %d, want %d", tc.addr, tc.port, tc.offset, got, tc.sh)
		}
		if tc.port != 0 || tc.offset != 0 {
			continue
		}
		if got := dhHash(fold); got != tc.sh {
			t.Errorf("dh bucket of %s = %d, want %d", tc.addr, got, tc.sh)
		}
		a := netip.MustParseAddr(tc.addr)
		if got := locHash(makeCacheAddr(a)); got != tc.lblc {
			t.Errorf("lblc bucket of %s = %d, want %d", tc.addr, got, tc.lblc)
		}
	}
}

// TestHash32 pins hash_32 itself: hash_32(1, bits) is the top bits of
// GOLDEN_RATIO_32 = 0x61C88647, hash_32(0, bits) is 0.
func TestHash32(t *testing.T) {
	for _, tc := range []struct {
		v    uint32
		bits uint
		want uint32
	}{
		{1, 8, 0x61}, {1, 10, 0x187}, {1, 16, 0x61c8}, {1, 32, 0x61c88647},
		{0, 8, 0}, {2, 8, 0xc3}, {0xffffffff, 8, 0x9e}, // -G = 0x9e3779b9
	} {
		if got := hash32(tc.v, tc.bits); got != tc.want {
			t.Errorf("hash_32(%#x, %d) = %#x, want %#x", tc.v, tc.bits, got, tc.want)
		}
	}
}

func TestSH(t *testing.T) {
	const vip = "198.51.100.1:80"
	tests := []struct {
		name     string
		flags    Flags
		weights  []int32
		overload []int
		src      string
		proto    uint8
		want     int
	}{
		// Weights 1 1 1: bucket i holds dest i%3. Buckets from
		// kernelBuckets: 10.0.0.1 39, 10.0.0.2 137, 10.0.0.3 235.
		{"39", 0, []int32{1, 1, 1}, nil, "10.0.0.1:1000", protoTCP, 0},
		{"137", 0, []int32{1, 1, 1}, nil, "10.0.0.2:1000", protoTCP, 2},
		{"235", 0, []int32{1, 1, 1}, nil, "10.0.0.3:1000", protoTCP, 1},
		{"16", 0, []int32{1, 1, 1}, nil, "192.168.77.1:1000", protoTCP, 1},
		// Weights 2 1: buckets 0 0 1 0 0 1 ...
		{"weighted 39", 0, []int32{2, 1}, nil, "10.0.0.1:1000", protoTCP, 0},
		{"weighted 137", 0, []int32{2, 1}, nil, "10.0.0.2:1000", protoTCP, 1},
		{"weighted 235", 0, []int32{2, 1}, nil, "10.0.0.3:1000", protoTCP, 0},
		// A weight-0 dest still holds one bucket, but is never used.
		{"weight 0 holds a bucket", 0, []int32{0, 1, 1}, nil, "10.0.0.1:1000", protoTCP, -1},
		{"overloaded", 0, []int32{1, 1, 1}, []int{0}, "10.0.0.1:1000", protoTCP, -1},
		// sh-port: port 1 moves 10.0.0.1 to bucket 137, port 257 to 82
		// (dest 1); not for ICMP.
		{"sh-port", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", protoTCP, 2},
		{"sh-port 257", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:257", protoTCP, 1},
		{"sh-port udp", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", protoUDP, 2},
		{"sh-port icmp", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", 1, 0},
		// sh-fallback from ihash 39: roffset 39 looks at (39+39)&255 = 78
		// (dest 0 again), roffset 40 at 79 (dest 1), 41 at 80 (dest 2).
		{"fallback", FlagSHFallback, []int32{1, 1, 1}, []int{0}, "10.0.0.1:1000", protoTCP, 1},
		{"fallback twice", FlagSHFallback, []int32{1, 1, 1}, []int{0, 1}, "10.0.0.1:1000", protoTCP, 2},
		{"fallback none", FlagSHFallback, []int32{1, 1, 1}, []int{0, 1, 2}, "10.0.0.1:1000", protoTCP, -1},
		{"fallback weight 0", FlagSHFallback, []int32{0, 1, 1}, nil, "10.0.0.1:1000", protoTCP, 1},
		// ihash 137 (dest 2): roffset 137 looks at 274&255 = 18 (dest 0).
		{"fallback 137", FlagSHFallback, []int32{1, 1, 1}, []int{2}, "10.0.0.2:1000", protoTCP, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dests(tt.weights...)
			for _, i := range tt.overload {
				ds[i].Flags |= DestOverload
			}
			s := newSched(t, "sh", tt.flags)
			s.Update(ds)
			p := tcp(tt.src, vip)
			p.Proto = tt.proto
			if got := s.Schedule(ds, p); got != tt.want {
				t.Fatalf("picked %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSHTable(t *testing.T) {
	s := newSched(t, "sh", 0).(*sh)
	s.Update(dests(4, 3, 2))
	want := []int32{0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 0, 0, 1}
	for i, w := range want {
		if s.table[i] != w {
			t.Fatalf("bucket %d = %d, want %d (table %v)", i, s.table[i], w, s.table[:len(want)])
		}
	}
	// 256 = 28*9 + 4: 28 full rounds then A's first four.
	counts := map[int32]int{}
	for _, d := range s.table {
		counts[d]++
	}
	if counts[0] != 28*4+4 || counts[1] != 28*3 || counts[2] != 28*2 {
		t.Fatalf("bucket counts %v, want 116 84 56", counts)
	}
}

// TestSHDistribution: sources spread over the buckets follow the weights.
// Consecutive addresses times the golden ratio fall almost evenly on the
// 256 buckets (hash_32 is Fibonacci hashing), so the shares are the bucket
// shares within 1%: 116/256, 84/256, 56/256.
func TestSHDistribution(t *testing.T) {
	ds := dests(4, 3, 2)
	s := newSched(t, "sh", 0)
	s.Update(ds)
	counts := make([]int, len(ds))
	const n = 256 * 200
	for i := range n {
		p := &Packet{Proto: protoTCP, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1000)}
		counts[s.Schedule(ds, p)]++
	}
	for i, want := range []float64{116.0 / 256, 84.0 / 256, 56.0 / 256} {
		if got := float64(counts[i]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("dest %d share %.4f, want %.4f", i, got, want)
		}
	}
}

// TestSHSticky: a source keeps its server, with and without sh-port, IPv4
// and IPv6, across instances and repeated calls.
func TestSHSticky(t *testing.T) {
	ds := dests(3, 1, 2, 5)
	for _, f := range []Flags{0, FlagSHPort, FlagSHPort | FlagSHFallback} {
		a, b := newSched(t, "sh", f), newSched(t, "sh", f)
		a.Update(ds)
		b.Update(ds)
		for i := range 2000 {
			src := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i), 14: byte(i >> 8)}), uint16(i))
			if i%2 == 0 {
				src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), uint16(i))
			}
			p := &Packet{Proto: protoTCP, Src: src}
			x := a.Schedule(ds, p)
			if x < 0 || a.Schedule(ds, p) != x || b.Schedule(ds, p) != x {
				t.Fatalf("flags %#x, %v: not sticky", f, src)
			}
		}
	}
}

// TestSHIPv6Fold: IPv6 sources hash by the XOR of their four words.
func TestSHIPv6Fold(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1:0:0:5")
	// 0x20010db8 ^ 0x00000000 ^ 0x00010000 ^ 0x00000005
	if got, want := addrFold(a), uint32(0x20010db8^0x00010000^0x5); got != want {
		t.Fatalf("fold = %#x, want %#x", got, want)
	}
}

func TestDH(t *testing.T) {
	ds := dests(5, 1, 1) // dh ignores weights: bucket i holds dest i%3
	s := newSched(t, "dh", FlagSHFallback|FlagSHPort)
	s.Update(ds)
	for _, tc := range []struct {
		dst  string
		want int
	}{
		{"10.0.0.1:80", 0},     // bucket 39
		{"10.0.0.2:80", 2},     // bucket 137
		{"10.0.0.3:8080", 1},   // bucket 235, port not hashed
		{"192.168.77.1:80", 1}, // bucket 16
	} {
		p := tcp("192.0.2.7:5555", tc.dst)
		if got := s.Schedule(ds, p); got != tc.want {
			t.Errorf("dst %s: picked %d, want %d", tc.dst, got, tc.want)
		}
		p.Src = netip.MustParseAddrPort("203.0.113.9:1")
		if got := s.Schedule(ds, p); got != tc.want {
			t.Errorf("dst %s: source changed the pick to %d", tc.dst, got)
		}
	}
	// No fallback in dh, whatever the flags: unavailable means no server.
	for _, spoil := range []func(d *Dest){
		func(d *Dest) { d.Flags |= DestOverload },
		func(d *Dest) { d.Weight = 0 },
		func(d *Dest) { d.Flags &^= DestAvailable },
	} {
		ds := dests(1, 1, 1)
		s.Update(ds)
		spoil(&ds[0])
		if got := s.Schedule(ds, tcp("192.0.2.7:5555", "10.0.0.1:80")); got != -1 {
			t.Errorf("unavailable bucket: picked %d, want -1", got)
		}
	}
}
