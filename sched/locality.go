package sched

import "time"

// The cache of the locality-based schedulers (lblc, lblcr): a table of
// destination addresses, each entry naming a real server (lblc) or a set of
// them (lblcr). Sizes, hashing and garbage collection follow ip_vs_lblc.c
// and ip_vs_lblcr.c, with the kernel timer replaced by Packet.Now.
const (
	locTabBits = 10 // CONFIG_IP_VS_LBLC_TAB_BITS, CONFIG_IP_VS_LBLCR_TAB_BITS
	locTabSize = 1 << locTabBits
	locTabMask = locTabSize - 1
	// locMaxSize is tbl->max_size: above it the periodic check collects
	// entries idle for locEntryTimeout.
	locMaxSize = locTabSize * 16

	locCheckInterval = int64(60 * time.Second) // CHECK_EXPIRE_INTERVAL
	locEntryTimeout  = int64(6 * time.Minute)  // ENTRY_TIMEOUT
	locExpiration    = int64(24 * time.Hour)   // DEFAULT_EXPIRATION, the lblc(r)_expiration sysctl
	locFullEvery     = 30                      // COUNT_FOR_FULL_EXPIRATION
	locMaxCatchUp    = 2 * 24 * 60             // timer ticks replayed after an idle gap
	locCapacity      = 2 * locMaxSize          // entries held at most, see locTable
	locSetCapacity   = 2 * locCapacity         // lblcr set elements held at most
	locNoEntry       = -1                      // empty chain, free list end
)

// locEntry is ip_vs_lblc_entry and ip_vs_lblcr_entry in one, pointer-free.
type locEntry struct {
	addr    cacheAddr
	next    int32 // next in the bucket chain, or in the free list
	dest    int32 // lblc: the destination's ref id
	lastuse int64
	// lblcr: the destination set, a list of set elements newest first.
	setHead int32
	setSize int32
	setMod  int64 // set->lastmod
}

// locTable holds at most locCapacity entries, allocated up front so that
// Schedule never allocates. Where the kernel would kmalloc one more entry
// past that, the table behaves as the kernel does when that GFP_ATOMIC
// allocation fails: the connection is still scheduled, the mapping is just
// not cached. Twice max_size leaves room for a full minute of new
// addresses above the level the periodic collection brings the table back
// to.
type locTable struct {
	bucket  [locTabSize]int32
	entries []locEntry
	free    int32
	count   int
	rover   int
	counter int
	// nextCheck is when the periodic check is next due; the kernel arms the
	// timer when the service is created, here the first Schedule arms it.
	nextCheck int64
	armed     bool
	// onFree is called for an entry about to be freed (lblcr frees its set).
	onFree func(e int32)
}

func (t *locTable) init() {
	t.entries = make([]locEntry, locCapacity)
	for i := range t.bucket {
		t.bucket[i] = locNoEntry
	}
	for i := range t.entries {
		t.entries[i].next = int32(i + 1)
	}
	t.entries[len(t.entries)-1].next = locNoEntry
	t.free = 0
	t.counter = 1
}

// locHash is ip_vs_lblc_hashkey and ip_vs_lblcr_hashkey:
// hash_32(ntohl(addr_fold), 10), the top 10 bits of
// ntohl(addr_fold) * 0x61C88647.
func locHash(a cacheAddr) uint32 {
	var fold uint32
	b := a.b
	if a.is4 {
		fold = uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	} else {
		for i := 0; i < 16; i += 4 {
			fold ^= uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		}
	}
	return hash32(fold, locTabBits)
}

// get returns the entry for a, or -1.
func (t *locTable) get(a cacheAddr) int32 {
	for e := t.bucket[locHash(a)]; e != locNoEntry; e = t.entries[e].next {
		if t.entries[e].addr == a {
			return e
		}
	}
	return locNoEntry
}

// add takes a free entry for a, hashed at the head of its chain as
// hlist_add_head_rcu does, with lastuse = now. It returns -1 when the table
// is full.
func (t *locTable) add(a cacheAddr, now int64) int32 {
	e := t.free
	if e == locNoEntry {
		return locNoEntry
	}
	t.free = t.entries[e].next
	h := locHash(a)
	t.entries[e] = locEntry{
		addr:    a,
		next:    t.bucket[h],
		lastuse: now,
		setHead: locNoEntry,
	}
	t.bucket[h] = e
	t.count++
	return e
}

// del unhashes and frees entry e.
func (t *locTable) del(e int32) {
	h := locHash(t.entries[e].addr)
	p := &t.bucket[h]
	for *p != e {
		p = &t.entries[*p].next
	}
	*p = t.entries[e].next
	if t.onFree != nil {
		t.onFree(e)
	}
	t.entries[e] = locEntry{next: t.free}
	t.free = e
	t.count--
}

// expire runs the periodic checks that fell due up to now, each at its own
// time, as the kernel timer would have run them while no packet came. An
// idle gap longer than locMaxCatchUp ticks replays only its last ticks.
func (t *locTable) expire(now int64) {
	if !t.armed {
		t.armed = true
		t.nextCheck = now + locCheckInterval
		return
	}
	if now < t.nextCheck {
		return
	}
	if ticks := (now-t.nextCheck)/locCheckInterval + 1; ticks > locMaxCatchUp {
		t.nextCheck += (ticks - locMaxCatchUp) * locCheckInterval
	}
	for now >= t.nextCheck {
		t.checkExpire(t.nextCheck)
		t.nextCheck += locCheckInterval
	}
}

// checkExpire is ip_vs_lblc_check_expire (ip_vs_lblcr_check_expire is the
// same): every 30th run a full check drops entries idle for the expiration
// time; otherwise, when the table is over max_size, entries idle for
// ENTRY_TIMEOUT are dropped bucket by bucket from the rover on, until 4/3
// of the excess (at most half of max_size) are gone.
func (t *locTable) checkExpire(now int64) {
	if t.counter%locFullEvery == 0 {
		t.sweep(now, locExpiration, false, 0)
		t.counter = 1
		return
	}
	if t.count <= locMaxSize {
		t.counter++
		return
	}
	goal := min((t.count-locMaxSize)*4/3, locMaxSize/2)
	t.sweep(now, locEntryTimeout, true, goal)
}

// sweep walks the buckets after the rover, dropping entries with
// now >= lastuse + idle; when limited it stops after the bucket in which
// goal entries were reached.
func (t *locTable) sweep(now, idle int64, limited bool, goal int) {
	j := t.rover
	for range locTabSize {
		j = (j + 1) & locTabMask
		for e := t.bucket[j]; e != locNoEntry; {
			next := t.entries[e].next
			if now >= t.entries[e].lastuse+idle {
				t.del(e)
				goal--
			}
			e = next
		}
		if limited && goal <= 0 {
			break
		}
	}
	t.rover = j
}

// lbOverloaded is is_overloaded of lblc and lblcr: the destination has more
// active connections than its weight while some destination of the service
// has fewer than half its weight.
func lbOverloaded(dests []Dest, d *Dest) bool {
	if d.active() <= d.Weight {
		return false
	}
	for i := range dests {
		if dests[i].active()*2 < dests[i].Weight {
			return true
		}
	}
	return false
}
