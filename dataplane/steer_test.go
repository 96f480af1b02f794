package dataplane

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/net/bpf"
)

// frame4 builds an Ethernet+IPv4 frame with the given protocol and L4 bytes.
func frame4(proto uint8, src, dst [4]byte, ihl int, l4 []byte) []byte {
	f := make([]byte, 14+ihl+len(l4))
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	copy(ip[ihl:], l4)
	return f
}

func ports(s, d uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, s)
	binary.BigEndian.PutUint16(b[2:], d)
	return b
}

// TestSteerProgramMatchesGo runs the fanout program in x/net/bpf's VM and
// checks it computes what the workers compute, for both legs of NAT
// connections and for the ICMP errors that quote them.
func TestSteerProgramMatchesGo(t *testing.T) {
	vips := [][4]byte{{198, 18, 0, 100}, {198, 18, 0, 101}}
	lips := [][4]byte{{198, 19, 0, 200}, {198, 19, 0, 201}}
	for _, tc := range []struct {
		name string
		st   steering
	}{
		{"endpoints", steering{vips: vips}},
		{"persistent /32", steering{vips: vips, lips: lips, masked: true, mask: 0xffffffff}},
		{"persistent /24", steering{vips: vips, lips: lips, masked: true, mask: 0xffffff00}},
		{"persistent /0", steering{vips: vips, masked: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { testSteer(t, tc.st) })
	}
}

func testSteer(t *testing.T, st steering) {
	vips := st.vips
	raw, err := steerProgram(st, true)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(disassemble(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	run := func(f []byte) uint32 {
		v, err := vm.Run(f)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		cip := [4]byte{198, 18, byte(1 + r.IntN(4)), byte(r.IntN(250) + 1)} // never a VIP
		rip := [4]byte{198, 19, 0, byte(10 + r.IntN(5))}
		cport := uint16(r.IntN(60000) + 1024)
		vip := vips[r.IntN(2)]
		proto := []uint8{6, 17}[r.IntN(2)]
		ihl := []int{20, 24}[r.IntN(2)]
		in := frame4(proto, cip, vip, ihl, ports(cport, 80))
		reply := frame4(proto, rip, cip, ihl, ports(8080, cport))
		want := st.steerKey(in)
		if got := st.steerKey(reply); got != want {
			t.Fatalf("Go twin: reply key %#x, request key %#x: legs of one connection disagree", got, want)
		}
		for _, f := range [][]byte{in, reply} {
			if got := run(f); got != want {
				t.Fatalf("program: key %#x, Go twin %#x (frame % x)", got, want, f)
			}
		}
		// An ICMP error from the server side quotes client→server; one
		// from the client side quotes VIP→client.
		quote := frame4(proto, cip, rip, 20, ports(cport, 8080))[14:]
		icmpFromRS := frame4(1, rip, cip, 20, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quote[:28]...))
		quote = frame4(proto, vip, cip, 20, ports(80, cport))[14:]
		icmpFromClient := frame4(1, cip, vip, 20, append([]byte{3, 4, 0, 0, 0, 0, 5, 0xdc}, quote[:28]...))
		for _, f := range [][]byte{icmpFromRS, icmpFromClient} {
			if got := st.steerKey(f); got != want {
				t.Fatalf("Go twin: ICMP error key %#x, connection key %#x", got, want)
			}
			if got := run(f); got != want {
				t.Fatalf("program: ICMP error key %#x, want %#x", got, want)
			}
		}
	}
	// FULLNAT replies come to a local address and steer by its port,
	// masked or not.
	for _, lip := range st.lips {
		for _, lport := range []uint16{1024, 1025, 40000} {
			f := frame4(6, [4]byte{198, 19, 0, 11}, lip, 20, ports(80, lport))
			want := steerKeyOf(be32(lip), lport)
			if got := run(f); got != want || st.steerKey(f) != want {
				t.Fatalf("FULLNAT reply to %v:%d: program %#x, twin %#x, want %#x", lip, lport, got, st.steerKey(f), want)
			}
		}
	}
	if st.masked {
		// One client's connections share a worker, whatever their ports.
		a := frame4(6, [4]byte{198, 18, 3, 7}, vips[0], 20, ports(40000, 80))
		b := frame4(6, [4]byte{198, 18, 3, 7}, vips[1], 20, ports(50001, 443))
		if run(a) != run(b) {
			t.Fatal("persistent steering: one client's connections on different keys")
		}
	}
	// ARP and echo requests go to worker 0.
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	echo := frame4(1, [4]byte{1, 2, 3, 4}, vips[0], 20, []byte{8, 0, 0, 0, 0, 1, 0, 1})
	for _, f := range [][]byte{arp, echo} {
		if got := run(f); got != 0 {
			t.Errorf("program: key %#x for %x, want 0", got, f[12:14])
		}
	}
}

func disassemble(t *testing.T, raw []bpf.RawInstruction) []bpf.Instruction {
	t.Helper()
	out, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("steer program does not disassemble")
	}
	return out
}
