package sched

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers whose first four transport bytes are the two ports,
// the ones ip_vs_sh_get_port and ip_vs_mh_get_port look into.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// goldenRatio32 is GOLDEN_RATIO_32 of include/linux/hash.h (Linux 4.7 on;
// before that hash_32 multiplied by GOLDEN_RATIO_PRIME_32, 0x9e370001).
const goldenRatio32 = 0x61C88647

// hash32 is the kernel's hash_32(val, bits): the top bits of the 32-bit
// product val * GOLDEN_RATIO_32 (__hash_32_generic; the architectures with
// their own __hash_32 must give the same value, lib/test_hash.c checks).
// ip_vs_sh.c, ip_vs_dh.c, ip_vs_lblc.c and ip_vs_lblcr.c hash with it in
// current kernels (seen in 4.19 and in mainline). Kernels up to at least
// 4.4 instead kept the low bits of val * 2654435761 (ntohl(addr_fold) *
// 2654435761UL & MASK), a formula uvs does not reproduce.
func hash32(val uint32, bits uint) uint32 {
	return val * goldenRatio32 >> (32 - bits)
}

// overloaded reports IP_VS_DEST_F_OVERLOAD.
func (d *Dest) overloaded() bool { return d.Flags&DestOverload != 0 }

// available reports IP_VS_DEST_F_AVAILABLE.
func (d *Dest) available() bool { return d.Flags&DestAvailable != 0 }

// active is atomic_read(&dest->activeconns).
func (d *Dest) active() int32 { return d.Conns.Active.Load() }

// connOverhead is ip_vs_dest_conn_overhead: activeconns*256 + inactconns,
// computed in 32 bits as the kernel's int is.
func connOverhead(d *Dest) int32 {
	return d.Conns.Active.Load()<<8 + d.Conns.Inactive.Load()
}

// totalConns is ip_vs_dest_totalconns: activeconns + inactconns.
func totalConns(d *Dest) int32 {
	return d.Conns.Active.Load() + d.Conns.Inactive.Load()
}

// addrFold is ntohl(addr_fold) of the IPVS hash functions: the IPv4
// address, or the XOR of the four 32-bit words of an IPv6 address, read in
// network order.
func addrFold(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}

// sourcePort is what ip_vs_sh_get_port and ip_vs_mh_get_port return for a
// packet that opens a connection: the source port for TCP, UDP and SCTP,
// zero for anything else.
func sourcePort(p *Packet) uint16 {
	switch p.Proto {
	case protoTCP, protoUDP, protoSCTP:
		return p.Src.Port()
	}
	return 0
}

// gcd is the kernel's gcd() for positive ints.
func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// destKey names a destination within its service, as ip_vs_lookup_dest does.
func destKey(d *Dest) netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// destRef is a destination as a scheduler's cache holds it: like the
// kernel's refcounted struct ip_vs_dest, it outlives the destination's
// removal from the service (the kernel keeps it in the dest trash while
// referenced) and is the same object again when the same address and port
// is added back.
type destRef struct {
	key netip.AddrPort
	idx int32 // index in the current list, or -1 while not in it
	// last is the destination as of the last Update that listed it: what
	// the kernel still reads of a dest in the trash (its weight, its
	// counters, which go on falling as its connections end), with
	// DestAvailable cleared once it is gone from the list.
	last Dest
}

// destRefs maps cache references to the current destination list.
type destRefs struct {
	refs  []destRef
	byKey map[netip.AddrPort]int32
	ofIdx []int32 // current list index -> ref id
}

func (r *destRefs) update(dests []Dest) {
	if r.byKey == nil {
		r.byKey = make(map[netip.AddrPort]int32)
	}
	for i := range r.refs {
		if r.refs[i].idx >= 0 {
			r.refs[i].idx = -1
			r.refs[i].last.Flags &^= DestAvailable
		}
	}
	r.ofIdx = r.ofIdx[:0]
	for i := range dests {
		k := destKey(&dests[i])
		id, ok := r.byKey[k]
		if !ok {
			id = int32(len(r.refs))
			r.refs = append(r.refs, destRef{key: k})
			r.byKey[k] = id
		}
		r.refs[id].idx = int32(i)
		r.refs[id].last = dests[i]
		r.ofIdx = append(r.ofIdx, id)
	}
}

// dest returns what the kernel would read through a reference: the live
// entry while the destination is listed, its last state after.
func (r *destRefs) dest(dests []Dest, id int32) *Dest {
	ref := &r.refs[id]
	if ref.idx >= 0 {
		return &dests[ref.idx]
	}
	return &ref.last
}

// cacheAddr is an address as the lblc and lblcr tables key it, without the
// pointer a netip.Addr carries for its zone.
type cacheAddr struct {
	b   [16]byte
	is4 bool
}

func makeCacheAddr(a netip.Addr) cacheAddr {
	return cacheAddr{b: a.As16(), is4: a.Is4()}
}
