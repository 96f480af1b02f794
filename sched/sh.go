package sched

// shTabBits is CONFIG_IP_VS_SH_TAB_BITS's default: 256 buckets.
const (
	shTabBits = 8
	shTabSize = 1 << shTabBits
	shTabMask = shTabSize - 1
)

// sh is ip_vs_sh.c, source hashing. The table is filled in list order
// (ip_vs_sh_reassign), each destination taking as many consecutive buckets
// as its weight (at least one, weight 0 included) and the list repeating
// until all 256 are taken. A packet's bucket is ip_vs_sh_hashkey's
//
//	(offset + hash_32(port + ntohl(addr_fold), 8)) & 255
//
// that is the top byte of (port + ntohl(addr_fold)) * 0x61C88647, plus
// offset, with offset 0, port the host-order source port under sh-port and
// 0 otherwise, addr_fold the source IPv4 address or the XOR of the IPv6
// address's four words. Every bit of the address reaches the bucket.
//
// A destination with weight <= 0 or DestOverload set is unavailable
// (is_unavailable): no connection, or with sh-fallback
// (ip_vs_sh_get_fallback) the probe goes on with roffset = ihash, ihash+1,
// ... (mod 256), looking at bucket (roffset + hash_32(...)) & 255, until an
// available one, at most 256 probes, stopping at an empty bucket.
type sh struct {
	flags Flags
	table [shTabSize]int32 // dest index, -1 when the list is empty
}

func init() { register("sh", newSH) }

func newSH(f Flags) Scheduler {
	s := &sh{flags: f}
	for i := range s.table {
		s.table[i] = -1
	}
	return s
}

// Update is ip_vs_sh_reassign, which IPVS runs on every add, delete and
// edit of a destination.
func (s *sh) Update(dests []Dest) {
	if len(dests) == 0 {
		for i := range s.table {
			s.table[i] = -1
		}
		return
	}
	p, count := 0, int32(0)
	for i := range s.table {
		s.table[i] = int32(p)
		count++
		if count >= dests[p].Weight {
			p = (p + 1) % len(dests)
			count = 0
		}
	}
}

// shHash is ip_vs_sh_hashkey.
func shHash(fold uint32, port uint16, offset uint32) uint32 {
	return (offset + hash32(uint32(port)+fold, shTabBits)) & shTabMask
}

func shUnavailable(d *Dest) bool { return d.Weight <= 0 || d.overloaded() }

func (s *sh) Schedule(dests []Dest, p *Packet) int {
	var port uint16
	if s.flags&FlagSHPort != 0 {
		port = sourcePort(p)
	}
	fold := addrFold(p.Src.Addr())
	ihash := shHash(fold, port, 0)
	i := s.table[ihash]
	if i < 0 {
		return -1
	}
	if !shUnavailable(&dests[i]) {
		return int(i)
	}
	if s.flags&FlagSHFallback == 0 {
		return -1
	}
	for off := uint32(0); off < shTabSize; off++ {
		roff := (off + ihash) % shTabSize
		i = s.table[shHash(fold, port, roff)]
		if i < 0 {
			break
		}
		if !shUnavailable(&dests[i]) {
			return int(i)
		}
	}
	return -1
}
