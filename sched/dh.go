package sched

// dhTabBits is CONFIG_IP_VS_DH_TAB_BITS's default: 256 buckets.
const (
	dhTabBits = 8
	dhTabSize = 1 << dhTabBits
)

// dh is ip_vs_dh.c, destination hashing. Unlike sh it ignores weights when
// filling the table (ip_vs_dh_reassign): bucket i holds destination i mod
// N. A packet's bucket is ip_vs_dh_hashkey's hash_32(ntohl(addr_fold), 8),
// the top byte of ntohl(addr_fold) * 0x61C88647, of its destination
// address; there is no port variant and no fallback. The bucket's
// destination is used only if it is available, has weight > 0 and is not
// overloaded.
type dh struct {
	table [dhTabSize]int32 // dest index, -1 when the list is empty
}

func init() { register("dh", newDH) }

func newDH(Flags) Scheduler {
	s := &dh{}
	for i := range s.table {
		s.table[i] = -1
	}
	return s
}

// Update is ip_vs_dh_reassign.
func (s *dh) Update(dests []Dest) {
	for i := range s.table {
		if len(dests) == 0 {
			s.table[i] = -1
		} else {
			s.table[i] = int32(i % len(dests))
		}
	}
}

// dhHash is ip_vs_dh_hashkey.
func dhHash(fold uint32) uint32 { return hash32(fold, dhTabBits) }

func (s *dh) Schedule(dests []Dest, p *Packet) int {
	i := s.table[dhHash(addrFold(p.Dst.Addr()))]
	if i < 0 {
		return -1
	}
	d := &dests[i]
	if !d.available() || d.Weight <= 0 || d.overloaded() {
		return -1
	}
	return int(i)
}
