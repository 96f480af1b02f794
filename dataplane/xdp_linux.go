package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	ebpfasm "github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
)

// The XDP program decides, before the kernel's stack or any AF_PACKET
// socket sees a frame, whether uvs forwards it. It looks up 8-byte keys in
// one hash map shared by every interface:
//
//	addr[4] port[2] proto[1] kind[1]   (address and port in network order)
//
// kind xdpKindDst with port and proto zero matches a destination address:
// the addresses uvs owns (VIPs, FULLNAT local addresses, the NAT gateway)
// say redirect, the host's own addresses say pass, so its health checks,
// VRRP and sync traffic stay the kernel's. kind xdpKindSrc matches a NAT
// real server's source address, port and protocol: its replies, which
// carry the client as destination. Everything else (ARP, multicast,
// IPv6, the host's forwarding) passes, so the AF_PACKET ring and the
// kernel see it as they do without XDP.
const (
	xdpKindDst = 1
	xdpKindSrc = 2

	xdpActRedirect = 1
	xdpActPass     = 2

	xdpMatchEntries = 1 << 16

	// XDP action and struct xdp_md offsets (uapi linux/bpf.h).
	xdpPass          = 2
	xdpMdData        = 0
	xdpMdDataEnd     = 4
	xdpMdRxQueueIdx  = 16
	ethIPv4MinLength = header.EthernetMinimumSize + header.IPv4MinimumSize
)

type xdpKey [8]byte

func dstKey(a [4]byte) xdpKey {
	return xdpKey{a[0], a[1], a[2], a[3], 0, 0, 0, xdpKindDst}
}

func srcKey(a [4]byte, port uint16, proto uint8) xdpKey {
	return xdpKey{a[0], a[1], a[2], a[3], byte(port >> 8), byte(port), proto, xdpKindSrc}
}

// xdpWant is the map's content for a snapshot and the host's own
// addresses. An address both uvs and the host claim is uvs's: a director
// that is also a real server has its VIPs on a local device too.
func xdpWant(s *service.Snapshot, host [][4]byte) map[xdpKey]uint8 {
	want := map[xdpKey]uint8{}
	for _, a := range host {
		want[dstKey(a)] = xdpActPass
	}
	// Standby addresses too: a backup director counts their packets as
	// it does without XDP, instead of leaving them to the kernel.
	for _, set := range []map[[4]byte]bool{s.Owned, s.Standby} {
		for a := range set {
			want[dstKey(a)] = xdpActRedirect
		}
	}
	protos := map[uint32]uint8{}
	for i := range s.Services {
		svc := &s.Services[i]
		if svc.Cfg.Key.FWMark == 0 {
			protos[svc.ID] = svc.Cfg.Key.Proto
		}
	}
	// Removed destinations too: their connections live on until they
	// time out, and their replies must not reach the kernel's forwarding.
	for i := range s.Dests {
		d := &s.Dests[i]
		if d.Fwd != service.FwdMasq || d.Port == 0 {
			continue
		}
		// A fwmark service (or one since removed) has no one protocol.
		ps := []uint8{header.ProtoTCP, header.ProtoUDP}
		if p, ok := protos[d.Svc]; ok {
			ps = []uint8{p}
		}
		for _, p := range ps {
			want[srcKey(d.Addr, d.Port, p)] = xdpActRedirect
		}
	}
	return want
}

// hostAddrs lists the IPv4 addresses of this network namespace's
// interfaces.
func hostAddrs() ([][4]byte, error) {
	as, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("xdp: list addresses: %w", err)
	}
	var out [][4]byte
	for _, a := range as {
		if ip4 := a.IP.To4(); ip4 != nil {
			out = append(out, [4]byte(ip4))
		}
	}
	return out, nil
}

// xdpMatch is the shared map and what was last written to it.
type xdpMatch struct {
	m    *ebpf.Map
	have map[xdpKey]uint8
}

func newXDPMatch() (*xdpMatch, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "uvs_match", Type: ebpf.Hash, KeySize: 8, ValueSize: 1, MaxEntries: xdpMatchEntries})
	if err != nil {
		return nil, fmt.Errorf("xdp: create match map: %w", err)
	}
	return &xdpMatch{m: m, have: map[xdpKey]uint8{}}, nil
}

// apply writes the difference between want and the map's content.
func (x *xdpMatch) apply(want map[xdpKey]uint8) error {
	if len(want) > xdpMatchEntries {
		return fmt.Errorf("xdp: %d addresses to match, the map holds %d", len(want), xdpMatchEntries)
	}
	var errs []error
	for k := range x.have {
		if _, ok := want[k]; !ok {
			if err := x.m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, fmt.Errorf("xdp: delete %v: %w", k, err))
				continue
			}
			delete(x.have, k)
		}
	}
	for k, v := range want {
		if x.have[k] == v {
			continue
		}
		if err := x.m.Put(k, v); err != nil {
			errs = append(errs, fmt.Errorf("xdp: put %v: %w", k, err))
			continue
		}
		x.have[k] = v
	}
	return errors.Join(errs...)
}

// ne16 and ne32 are the values that BPF loads and stores of these bytes
// see: BPF memory access is in the host's byte order.
func ne16(b0, b1 byte) int32 { return int32(binary.NativeEndian.Uint16([]byte{b0, b1})) }
func ne32(b0, b1, b2, b3 byte) int64 {
	return int64(binary.NativeEndian.Uint32([]byte{b0, b1, b2, b3}))
}

// xdpProgram is the redirect program for one interface: frames whose key
// says redirect go to the socket of their receive queue in xsks (or to
// the kernel when that queue has none), the rest to the kernel. So do
// frames longer than maxLen, which a socket's chunk cannot hold (jumbo
// frames; the program is multi-buffer aware, so a veth keeps its MTU
// range), for the AF_PACKET ring.
func xdpProgram(match, xsks *ebpf.Map, maxLen int32) ebpfasm.Instructions {
	lookup := func() ebpfasm.Instructions {
		return ebpfasm.Instructions{
			ebpfasm.LoadMapPtr(ebpfasm.R1, match.FD()),
			ebpfasm.Mov.Reg(ebpfasm.R2, ebpfasm.RFP),
			ebpfasm.Add.Imm(ebpfasm.R2, -8),
			ebpfasm.FnMapLookupElem.Call(),
		}
	}
	var p ebpfasm.Instructions
	p = append(p,
		// R6 ctx, R7 data, R8 data_end: callee-saved, so they survive
		// the lookups (a map lookup leaves packet pointers valid).
		ebpfasm.Mov.Reg(ebpfasm.R6, ebpfasm.R1),
		ebpfasm.FnXdpGetBuffLen.Call(),
		ebpfasm.JGT.Imm(ebpfasm.R0, maxLen, "pass"),
		ebpfasm.LoadMem(ebpfasm.R7, ebpfasm.R6, xdpMdData, ebpfasm.Word),
		ebpfasm.LoadMem(ebpfasm.R8, ebpfasm.R6, xdpMdDataEnd, ebpfasm.Word),
		ebpfasm.Mov.Reg(ebpfasm.R2, ebpfasm.R7),
		ebpfasm.Add.Imm(ebpfasm.R2, ethIPv4MinLength),
		ebpfasm.JGT.Reg(ebpfasm.R2, ebpfasm.R8, "pass"),
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, 12, ebpfasm.Half),
		ebpfasm.JNE.Imm(ebpfasm.R2, ne16(0x08, 0x00), "pass"),
		// Group addresses (broadcast, multicast) are never uvs's.
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, 0, ebpfasm.Byte),
		ebpfasm.And.Imm(ebpfasm.R2, 1),
		ebpfasm.JNE.Imm(ebpfasm.R2, 0, "pass"),
		// Destination key.
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, 30, ebpfasm.Word),
		ebpfasm.StoreMem(ebpfasm.RFP, -8, ebpfasm.R2, ebpfasm.Word),
		ebpfasm.StoreImm(ebpfasm.RFP, -4, ne32(0, 0, 0, xdpKindDst), ebpfasm.Word),
	)
	p = append(p, lookup()...)
	p = append(p,
		ebpfasm.JEq.Imm(ebpfasm.R0, 0, "src"),
		ebpfasm.LoadMem(ebpfasm.R0, ebpfasm.R0, 0, ebpfasm.Byte),
		ebpfasm.JEq.Imm(ebpfasm.R0, xdpActRedirect, "redirect"),
		ebpfasm.Ja.Label("pass"),
		// Source key, for headers without options only: the ports
		// follow a 20-byte header.
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, header.EthernetMinimumSize, ebpfasm.Byte).WithSymbol("src"),
		ebpfasm.JNE.Imm(ebpfasm.R2, 0x45, "pass"),
		ebpfasm.Mov.Reg(ebpfasm.R2, ebpfasm.R7),
		ebpfasm.Add.Imm(ebpfasm.R2, ethIPv4MinLength+4),
		ebpfasm.JGT.Reg(ebpfasm.R2, ebpfasm.R8, "pass"),
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, 26, ebpfasm.Word),
		ebpfasm.StoreMem(ebpfasm.RFP, -8, ebpfasm.R2, ebpfasm.Word),
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, ethIPv4MinLength, ebpfasm.Half),
		ebpfasm.StoreMem(ebpfasm.RFP, -4, ebpfasm.R2, ebpfasm.Half),
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R7, 23, ebpfasm.Byte),
		ebpfasm.StoreMem(ebpfasm.RFP, -2, ebpfasm.R2, ebpfasm.Byte),
		ebpfasm.StoreImm(ebpfasm.RFP, -1, xdpKindSrc, ebpfasm.Byte),
	)
	p = append(p, lookup()...)
	p = append(p,
		ebpfasm.JEq.Imm(ebpfasm.R0, 0, "pass"),
		ebpfasm.LoadMem(ebpfasm.R0, ebpfasm.R0, 0, ebpfasm.Byte),
		ebpfasm.JNE.Imm(ebpfasm.R0, xdpActRedirect, "pass"),
		// bpf_redirect_map(xsks, rx_queue_index, XDP_PASS): the low
		// flag bits are the action when the queue has no socket.
		ebpfasm.LoadMem(ebpfasm.R2, ebpfasm.R6, xdpMdRxQueueIdx, ebpfasm.Word).WithSymbol("redirect"),
		ebpfasm.LoadMapPtr(ebpfasm.R1, xsks.FD()),
		ebpfasm.Mov.Imm(ebpfasm.R3, xdpPass),
		ebpfasm.FnRedirectMap.Call(),
		ebpfasm.Return(),
		ebpfasm.Mov.Imm(ebpfasm.R0, xdpPass).WithSymbol("pass"),
		ebpfasm.Return(),
	)
	return p
}

// xdpFilter is the program on one interface, its socket map, and the
// bpf_link that keeps it attached: the link belongs to uvsd's file
// descriptor, so the program goes with the process, even a killed one.
type xdpFilter struct {
	xsks *ebpf.Map
	prog *ebpf.Program
	link link.Link
	mode string
}

// attachXDP loads and attaches the redirect program on ifindex after
// putting sockets (by queue) in its map: native (driver) mode when the
// driver has it, generic otherwise.
func attachXDP(ifindex int, ifname string, match *xdpMatch, sockets map[int]int, maxLen int) (*xdpFilter, error) {
	f := &xdpFilter{}
	ok := false
	defer func() {
		if !ok {
			f.close()
		}
	}()
	var err error
	f.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "uvs_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 64})
	if err != nil {
		return nil, fmt.Errorf("xdp %s: create socket map: %w", ifname, err)
	}
	for q, fd := range sockets {
		if err := f.xsks.Put(uint32(q), uint32(fd)); err != nil {
			return nil, fmt.Errorf("xdp %s: socket of queue %d: %w", ifname, q, err)
		}
	}
	f.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "uvs_redirect", Type: ebpf.XDP, License: "GPL",
		Flags: unix.BPF_F_XDP_HAS_FRAGS, Instructions: xdpProgram(match.m, f.xsks, int32(maxLen))})
	if err != nil {
		return nil, fmt.Errorf("xdp %s: load program: %w", ifname, err)
	}
	// Native mode on a veth turns off its peer's TSO (the kernel's veth
	// XDP support), so bulk TCP arrives in MTU-sized frames. Generic
	// mode would keep it, but the super-frames this program passes never
	// reach the AF_PACKET ring there (measured: iperf3 at 22 Mbit/s), so
	// native comes first everywhere.
	modes := []struct {
		flags link.XDPAttachFlags
		name  string
	}{{link.XDPDriverMode, "native"}, {link.XDPGenericMode, "generic"}}
	var errs []error
	for _, m := range modes {
		l, err := link.AttachXDP(link.XDPOptions{Program: f.prog, Interface: ifindex, Flags: m.flags})
		if err == nil {
			f.link, f.mode = l, m.name
			ok = true
			return f, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.name, err))
	}
	return nil, fmt.Errorf("xdp %s: attach: %w", ifname, errors.Join(errs...))
}

func (f *xdpFilter) close() {
	if f.link != nil {
		_ = f.link.Close()
		f.link = nil
	}
	if f.prog != nil {
		_ = f.prog.Close()
		f.prog = nil
	}
	if f.xsks != nil {
		_ = f.xsks.Close()
		f.xsks = nil
	}
}
