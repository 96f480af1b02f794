package dataplane

import (
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/net/bpf"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// Steering: with several workers, every packet of a connection must reach
// the worker whose table holds it, whichever direction it travels. The
// client endpoint is the one thing both legs of a NAT connection share
// (NOTES.md item 6): it is the source of a packet to a VIP and the
// destination of a reply. A classic BPF program attached to each
// interface's PACKET_FANOUT group computes steerKey; the kernel takes it
// modulo the number of workers. ICMP errors are steered by the connection
// they quote, so the owner translates them. Everything else (ARP, echo
// requests) goes to worker 0.

// steerKeyOf mixes a client endpoint into the value the program returns.
// The multiply spreads every bit of the endpoint into the middle bits the
// shift keeps: Linux hands out even ephemeral ports to connect(), so the
// low bits of a port alone would put one client on one worker.
func steerKeyOf(addr uint32, port uint16) uint32 {
	return ((addr ^ uint32(port)) * steerMul) >> 16
}

const steerMul = 0x9e3779b1

// steering is what the fanout program is built from. With a persistent
// service, a client's connections must share a worker, whose table holds
// the client network's persistence template: the client is then steered
// by its address under mask (the coarsest persistence granularity),
// without its port. FULLNAT local addresses are always steered by their
// port as well: the workers hand out local ports that come back to them.
type steering struct {
	vips [][4]byte
	lips [][4]byte
	// masked: clients steer by address&mask alone (mask may be 0 for
	// a /0 granularity: every client on one worker).
	masked bool
	mask   uint32
}

func be32(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

// steeringOf derives the steering of a snapshot.
func steeringOf(s *service.Snapshot) steering {
	st := steering{vips: slices.Clone(s.VIPs())}
	bits := -1 // the coarsest persistence granularity; -1: none persistent
	for i := range s.Services {
		svc := &s.Services[i]
		for _, a := range svc.LocalAddrs {
			if !slices.Contains(st.lips, a) {
				st.lips = append(st.lips, a)
			}
		}
		if svc.Cfg.Persistent {
			b := svc.Cfg.Netmask
			if b <= 0 || b > 32 {
				b = 32
			}
			if bits < 0 || b < bits {
				bits = b
			}
		}
	}
	if bits >= 0 {
		st.masked = true
		if bits > 0 {
			st.mask = ^uint32(0) << (32 - bits)
		}
	}
	if len(s.Marks) > 0 {
		// A fwmark service has no address of its own: its packets
		// reach us for any address we answer for, steered as a VIP's.
		for _, m := range []map[[4]byte]bool{s.Owned, s.Standby} {
			for a := range m {
				if !slices.Contains(st.vips, a) && !slices.Contains(st.lips, a) {
					st.vips = append(st.vips, a)
				}
			}
		}
	}
	byAddr := func(a, b [4]byte) int { return slices.Compare(a[:], b[:]) }
	slices.SortFunc(st.vips, byAddr)
	slices.SortFunc(st.lips, byAddr)
	return st
}

func (st *steering) equal(o *steering) bool {
	return st.masked == o.masked && st.mask == o.mask && slices.Equal(st.vips, o.vips) && slices.Equal(st.lips, o.lips)
}

func (st *steering) isLIP(a [4]byte) bool { return slices.Contains(st.lips, a) }

// key is the steering key of an endpoint: a FULLNAT local one, or a
// client's.
func (st *steering) key(addr [4]byte, port uint16) uint32 {
	if st.masked && !st.isLIP(addr) {
		return steerKeyOf(be32(addr)&st.mask, 0)
	}
	return steerKeyOf(be32(addr), port)
}

// steerKey is the Go twin of the BPF program, over an Ethernet frame. The
// workers' owner checks use key directly; tests compare the two.
func (st *steering) steerKey(frame []byte) uint32 {
	eth := header.Ethernet(frame)
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize || eth.Type() != header.EtherTypeIPv4 {
		return 0
	}
	ip := frame[header.EthernetMinimumSize:]
	ihl := int(ip[0]&0xf) * 4
	be := binary.BigEndian
	isVIP := func(a [4]byte) bool { return slices.Contains(st.vips, a) }
	switch ip[9] {
	case header.ProtoTCP, header.ProtoUDP:
		if len(ip) < ihl+4 {
			return 0
		}
		if isVIP([4]byte(ip[16:20])) {
			return st.key([4]byte(ip[12:16]), be.Uint16(ip[ihl:]))
		}
		return st.key([4]byte(ip[16:20]), be.Uint16(ip[ihl+2:]))
	case header.ProtoICMP:
		if len(ip) < ihl+8+24 {
			return 0
		}
		switch ip[ihl] {
		case header.ICMPv4DestUnreachable, header.ICMPv4SourceQuench, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		default:
			return 0
		}
		q := ip[ihl+8:]
		if isVIP([4]byte(q[12:16])) {
			return st.key([4]byte(q[16:20]), be.Uint16(q[22:]))
		}
		return st.key([4]byte(q[12:16]), be.Uint16(q[20:]))
	}
	return 0
}

// skfNetOff is SKF_NET_OFF: loads relative to the network header, whatever
// skb->data points at when the fanout program runs.
const skfNetOff = -0x100000

// steerProgram assembles the fanout program. With vm set it addresses a
// whole Ethernet frame from offset 0 instead, so that x/net/bpf's VM can
// run it in tests.
func steerProgram(st steering, vm bool) ([]bpf.RawInstruction, error) {
	vips := slices.Clone(st.vips)
	slices.SortFunc(vips, func(a, b [4]byte) int { return slices.Compare(a[:], b[:]) })
	off := int32(skfNetOff)
	net := uint32(off)
	if vm {
		net = header.EthernetMinimumSize
	}
	var a asm
	// Only IPv4.
	if vm {
		a.ins(bpf.LoadAbsolute{Off: 12, Size: 2})
	} else {
		a.ins(bpf.LoadExtension{Num: bpf.ExtProto})
	}
	a.jeq(header.EtherTypeIPv4, "", "ret0")
	a.ins(bpf.LoadMemShift{Off: net}) // X = IHL*4
	a.ins(bpf.LoadAbsolute{Off: net + 9, Size: 1})
	a.jeq(header.ProtoTCP, "l4", "")
	a.jeq(header.ProtoUDP, "l4", "")
	a.jeq(header.ProtoICMP, "icmp", "ret0")

	// endpoint steers on the address in A and the port at portOff
	// (indirect, after the IP header): masked client, or address and port.
	n := 0
	endpoint := func(portOff uint32) {
		n++
		full, done := fmt.Sprintf("full%d", n), fmt.Sprintf("done%d", n)
		a.ins(bpf.StoreScratch{Src: bpf.RegA, N: 0})
		if st.masked {
			if len(st.lips) > 0 {
				a.addrChain(st.lips, full, "")
			}
			a.ins(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: st.mask})
			a.ins(bpf.StoreScratch{Src: bpf.RegA, N: 0})
			a.ins(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
			a.jmp(done)
		}
		a.label(full)
		a.ins(bpf.LoadIndirect{Off: net + portOff, Size: 2})
		a.label(done)
		a.jmp("mix")
	}

	a.label("l4")
	a.ins(bpf.LoadAbsolute{Off: net + 16, Size: 4})
	a.addrChain(vips, "l4src", "l4dst")
	a.label("l4src") // to a VIP: the client is the source
	a.ins(bpf.LoadAbsolute{Off: net + 12, Size: 4})
	endpoint(0)
	a.label("l4dst") // a reply: the client (or a FULLNAT local address) is the destination
	a.ins(bpf.LoadAbsolute{Off: net + 16, Size: 4})
	endpoint(2)

	a.label("icmp")
	a.ins(bpf.LoadIndirect{Off: net, Size: 1})
	a.jeq(header.ICMPv4DestUnreachable, "quote", "")
	a.jeq(header.ICMPv4SourceQuench, "quote", "")
	a.jeq(header.ICMPv4TimeExceeded, "quote", "")
	a.jeq(header.ICMPv4ParamProblem, "quote", "ret0")
	a.label("quote") // the quoted header sits 8 bytes into the ICMP message
	a.ins(bpf.LoadIndirect{Off: net + 8 + 12, Size: 4})
	a.addrChain(vips, "qdst", "qsrc")
	a.label("qdst") // we sent VIP→client and it bounced: client is the quote's destination
	a.ins(bpf.LoadIndirect{Off: net + 8 + 16, Size: 4})
	endpoint(8 + 22)
	a.label("qsrc") // we sent client→server: client is the quote's source
	a.ins(bpf.LoadIndirect{Off: net + 8 + 12, Size: 4})
	endpoint(8 + 20)

	a.label("mix") // A = port, M[0] = address: return steerKeyOf
	a.ins(bpf.LoadScratch{Dst: bpf.RegX, N: 0})
	a.ins(bpf.ALUOpX{Op: bpf.ALUOpXor})
	a.ins(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerMul})
	a.ins(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	a.ins(bpf.RetA{})
	a.label("ret0")
	a.ins(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// asm is a tiny label-resolving assembler over x/net/bpf.
type asm struct {
	prog   []bpf.Instruction
	labels map[string]int
	fix    []fixup
}

type fixup struct {
	at          int
	true, false string // jump targets; "" is the next instruction
	always      bool
}

func (a *asm) ins(i bpf.Instruction) { a.prog = append(a.prog, i) }

func (a *asm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.prog)
}

func (a *asm) jeq(val uint32, t, f string) {
	a.fix = append(a.fix, fixup{at: len(a.prog), true: t, false: f})
	a.ins(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val})
}

func (a *asm) jmp(to string) {
	a.fix = append(a.fix, fixup{at: len(a.prog), true: to, always: true})
	a.ins(bpf.Jump{})
}

// addrChain jumps to hit when A is one of addrs, else falls through (miss
// "") or jumps to miss.
func (a *asm) addrChain(addrs [][4]byte, hit, miss string) {
	for _, v := range addrs {
		a.jeq(binary.BigEndian.Uint32(v[:]), hit, "")
	}
	if miss != "" {
		a.jmp(miss)
	}
}

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for _, f := range a.fix {
		skip := func(l string) (uint32, error) {
			if l == "" {
				return 0, nil
			}
			to, ok := a.labels[l]
			if !ok || to <= f.at {
				return 0, fmt.Errorf("steer program: bad jump to %q", l)
			}
			return uint32(to - f.at - 1), nil
		}
		t, err := skip(f.true)
		if err != nil {
			return nil, err
		}
		if f.always {
			a.prog[f.at] = bpf.Jump{Skip: t}
			continue
		}
		fl, err := skip(f.false)
		if err != nil {
			return nil, err
		}
		if t > 255 || fl > 255 {
			return nil, fmt.Errorf("steer program: jump too far (%d VIPs)", len(a.labels))
		}
		j := a.prog[f.at].(bpf.JumpIf)
		j.SkipTrue, j.SkipFalse = uint8(t), uint8(fl)
		a.prog[f.at] = j
	}
	return bpf.Assemble(a.prog)
}
