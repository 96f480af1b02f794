package sched

import (
	"math"
	"net/netip"
	"testing"
)

// The bucket of an IPv4 source under sh (and of a destination under dh) is
// the low byte of addr*2654435761, which is the low byte of
// (last octet * 0xb1): 10.0.0.1 -> 0xb1 = 177, 10.0.0.2 -> 0x162 & 0xff =
// 98, 10.0.0.3 -> 0x213 & 0xff = 19.
func TestSHBuckets(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port uint16
		want uint32
	}{
		{"10.0.0.1", 0, 177},
		{"10.0.0.2", 0, 98},
		{"10.0.0.3", 0, 19},
		{"192.168.77.1", 0, 177}, // only the low byte counts
		{"10.0.0.1", 1, 98},      // port + address: as 10.0.0.2
		{"10.0.0.1", 257, 98},
	} {
		if got := shHash(addrFold(netip.MustParseAddr(tc.addr)), tc.port, 0); got != tc.want {
			t.Errorf("bucket of %s port %d = %d, want %d", tc.addr, tc.port, got, tc.want)
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
		// Weights 1 1 1: bucket i holds dest i%3.
		{"177", 0, []int32{1, 1, 1}, nil, "10.0.0.1:1000", protoTCP, 0},
		{"98", 0, []int32{1, 1, 1}, nil, "10.0.0.2:1000", protoTCP, 2},
		{"19", 0, []int32{1, 1, 1}, nil, "10.0.0.3:1000", protoTCP, 1},
		// Weights 2 1: buckets 0 0 1 0 0 1 ...
		{"weighted 177", 0, []int32{2, 1}, nil, "10.0.0.1:1000", protoTCP, 0},
		{"weighted 98", 0, []int32{2, 1}, nil, "10.0.0.2:1000", protoTCP, 1},
		{"weighted 19", 0, []int32{2, 1}, nil, "10.0.0.3:1000", protoTCP, 0},
		// A weight-0 dest still holds one bucket, but is never used.
		{"weight 0 holds a bucket", 0, []int32{0, 1, 1}, nil, "10.0.0.1:1000", protoTCP, -1},
		{"overloaded", 0, []int32{1, 1, 1}, []int{0}, "10.0.0.1:1000", protoTCP, -1},
		// sh-port: port 1 moves 10.0.0.1 to bucket 98; not for ICMP.
		{"sh-port", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", protoTCP, 2},
		{"sh-port udp", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", protoUDP, 2},
		{"sh-port icmp", FlagSHPort, []int32{1, 1, 1}, nil, "10.0.0.1:1", 1, 0},
		// sh-fallback from bucket 177: offset 177 gives (177+177)&255 = 98.
		{"fallback", FlagSHFallback, []int32{1, 1, 1}, []int{0}, "10.0.0.1:1000", protoTCP, 2},
		// ... then offset 178 gives 99 (dest 0), offset 179 gives 100 (dest 1).
		{"fallback twice", FlagSHFallback, []int32{1, 1, 1}, []int{0, 2}, "10.0.0.1:1000", protoTCP, 1},
		{"fallback none", FlagSHFallback, []int32{1, 1, 1}, []int{0, 1, 2}, "10.0.0.1:1000", protoTCP, -1},
		{"fallback weight 0", FlagSHFallback, []int32{0, 1, 1}, nil, "10.0.0.1:1000", protoTCP, 2},
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
// Every last octet appears equally often, so each bucket gets the same
// number of sources and the shares are exactly the bucket shares: within
// 1% of 116/256, 84/256, 56/256.
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
		{"10.0.0.1:80", 0},   // bucket 177
		{"10.0.0.2:80", 2},   // bucket 98
		{"10.0.0.3:8080", 1}, // bucket 19, port not hashed
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
