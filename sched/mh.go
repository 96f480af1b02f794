package sched

import (
	"fmt"
	"math/bits"
	"net/netip"
)

// mhPrimes are the lookup table sizes ip_vs_mh.c can be built with (its
// primes[]); CONFIG_IP_VS_MH_TAB_INDEX (8..17) picks primes[index-8].
var mhPrimes = [...]uint32{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// MHDefaultTabIndex is CONFIG_IP_VS_MH_TAB_INDEX's default. The table size
// is a kernel build option, not a per-service setting: net/netfilter/ipvs/
// Kconfig has "config IP_VS_MH_TAB_INDEX ... range 8 17, default 12", and
// ip_vs_mh.c defines IP_VS_MH_TAB_INDEX as CONFIG_IP_VS_MH_TAB_INDEX - 8 and
// IP_VS_MH_TAB_SIZE as primes[IP_VS_MH_TAB_INDEX], so the default table is
// primes[12-8] = primes[4] = 4093 entries, with IP_VS_MH_TAB_BITS =
// 12/2 = 6 for the weight shift. Kernels built with 16 have the
// primes[8] = 65521-entry table: NewMH(f, 16).
const MHDefaultTabIndex = 12

// The fixed hsiphash keys of generate_hash_secret: hash1 places packets
// and gives each destination its starting offset, hash2 its skip. Both
// words of each key are the same value.
const (
	mhKey1 = 2654435761
	mhKey2 = 2654446892
)

// mh is ip_vs_mh.c, Maglev hashing (Eisenbud et al., NSDI 2016, 3.4) as
// IPVS does it, on a 64-bit kernel (a 32-bit kernel's hsiphash is a
// different function and gives other tables).
//
// Each destination i of the list gets offset_i = H1(addr_i, port_i) mod M
// and skip_i = H2(addr_i, port_i) mod (M-1) + 1, with
// H(addr, port) = hsiphash(u32(port + ntohl(addr_fold))). Population walks
// the list round after round; in each round a destination claims "turns"
// entries, each the next free slot of its sequence offset, offset+skip, ...
// (mod M), until all M are taken. turns is (weight/g) >> rshift, where g is
// the gcd of the positive weights and rshift shrinks the largest weight/g to
// CONFIG_IP_VS_MH_TAB_INDEX/2 bits; a weight that shifts to 0 still gets one
// turn. The weights used are IPVS's last_weight: the latest non-zero weight,
// so quiescing a destination (weight 0) leaves the table as it was and only
// makes the destination unavailable.
//
// A packet goes to entry H1(src, port) mod M, port being the source port
// under mh-port (FlagSHPort) and 0 otherwise. If that destination has
// weight <= 0 or is overloaded there is no connection, or under mh-fallback
// (FlagSHFallback) the probe goes on with H1 of (offset + port + src) for
// offset = ihash, ihash+1, ... (mod M) until an available one.
type mh struct {
	flags  Flags
	size   uint32 // M, prime
	bits   int    // CONFIG_IP_VS_MH_TAB_INDEX / 2
	lookup []int32
	// lastWeight is dest->last_weight by destination, for the dests of the
	// last Update.
	lastWeight map[netip.AddrPort]int32
}

func init() {
	register("mh", func(f Flags) Scheduler {
		s, _ := NewMH(f, MHDefaultTabIndex)
		return s
	})
}

// NewMH returns an mh scheduler with the table of a kernel built with
// CONFIG_IP_VS_MH_TAB_INDEX = tabIndex (8..17); New("mh") uses the default.
func NewMH(f Flags, tabIndex int) (Scheduler, error) {
	if tabIndex < 8 || tabIndex > 17 {
		return nil, fmt.Errorf("mh table index %d: want 8..17", tabIndex)
	}
	s := &mh{
		flags:      f,
		size:       mhPrimes[tabIndex-8],
		bits:       tabIndex / 2,
		lastWeight: map[netip.AddrPort]int32{},
	}
	s.lookup = make([]int32, s.size)
	for i := range s.lookup {
		s.lookup[i] = -1
	}
	return s, nil
}

func mhHash(key uint64, fold uint32, port uint16, offset uint32) uint32 {
	return hsiphash32(key, key, offset+uint32(port)+fold)
}

// Update is ip_vs_mh_dest_changed: last weights, gcd and shift, then
// ip_vs_mh_permutate and ip_vs_mh_populate over the whole list.
//
// last_weight is derived against the previous Update: a destination new to
// the list takes its weight (0 included), a listed one its weight unless
// that is 0. An Update standing for two edits, 5 -> 3 -> 0, keeps 5 where
// IPVS keeps 3.
func (s *mh) Update(dests []Dest) {
	// __ip_vs_update_dest: last_weight follows the weight when the dest is
	// added or given a non-zero weight.
	lw := make([]int32, len(dests))
	next := make(map[netip.AddrPort]int32, len(dests))
	for i := range dests {
		k := destKey(&dests[i])
		old, listed := s.lastWeight[k]
		if !listed || dests[i].Weight != 0 {
			lw[i] = dests[i].Weight
		} else {
			lw[i] = old
		}
		next[k] = lw[i]
	}
	s.lastWeight = next

	var g, maxW int32
	for _, w := range lw {
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		maxW = max(maxW, w)
	}
	if g < 1 {
		for i := range s.lookup {
			s.lookup[i] = -1
		}
		return
	}
	rshift := max(bits.Len32(uint32(maxW/g))-s.bits, 0)

	m := s.size
	perm := make([]uint32, len(dests))
	skip := make([]uint32, len(dests))
	turns := make([]int32, len(dests))
	for i := range dests {
		d := &dests[i]
		fold := addrFold(d.Addr)
		perm[i] = mhHash(mhKey1, fold, d.Port, 0) % m
		skip[i] = mhHash(mhKey2, fold, d.Port, 0)%(m-1) + 1
		turns[i] = (lw[i] / g) >> rshift
		if turns[i] == 0 && lw[i] != 0 {
			turns[i] = 1
		}
	}

	taken := make([]bool, m)
	n, dtCount := uint32(0), int32(0)
	for n < m {
		for i := 0; i < len(dests); {
			if turns[i] < 1 {
				i++
				continue
			}
			c := perm[i]
			for taken[c] {
				perm[i] += skip[i]
				if perm[i] >= m {
					perm[i] -= m
				}
				c = perm[i]
			}
			taken[c] = true
			s.lookup[c] = int32(i)
			if n++; n == m {
				return
			}
			if dtCount++; dtCount >= turns[i] {
				dtCount = 0
				i++
			}
		}
	}
}

func (s *mh) Schedule(dests []Dest, p *Packet) int {
	var port uint16
	if s.flags&FlagSHPort != 0 {
		port = sourcePort(p)
	}
	fold := addrFold(p.Src.Addr())
	ihash := mhHash(mhKey1, fold, port, 0) % s.size
	i := s.lookup[ihash]
	if i < 0 {
		return -1
	}
	if !shUnavailable(&dests[i]) {
		return int(i)
	}
	if s.flags&FlagSHFallback == 0 {
		return -1
	}
	for off := uint32(0); off < s.size; off++ {
		roff := (off + ihash) % s.size
		i = s.lookup[mhHash(mhKey1, fold, port, roff)%s.size]
		if i < 0 {
			break
		}
		if !shUnavailable(&dests[i]) {
			return int(i)
		}
	}
	return -1
}
