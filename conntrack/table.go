package conntrack

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Dir says which tuple of a connection a lookup matched.
type Dir uint8

const (
	DirOrig  Dir = iota // the client's side: the packet is client→service
	DirReply            // the real server's side: the packet is a reply
)

// Errors Insert returns.
var (
	ErrFull   = errors.New("conntrack: table full")
	ErrExists = errors.New("conntrack: tuple already tracked")
)

// MaxCapacity is the largest capacity New accepts.
const MaxCapacity = 1 << 28

// slot is one index entry. ref is the entry index+1 (0: empty slot) with
// dirBit set when the slot indexes the entry's Reply tuple; tag is the
// tuple's full hash, which gives the slot's home (tag & mask) and skips
// nearly every tuple compare that would fail.
type slot struct {
	ref uint32
	tag uint32
}

const (
	dirBit = 1 << 31
	live   = ^uint32(0) // Conn.next of an entry in use
)

// Table is one worker's connection table. It is not safe for concurrent
// use: the worker that owns it calls every method; other goroutines ask
// the owner for a snapshot (AppendSnapshot).
//
// Entries live in one array, allocated by New and never moved, and are
// named by their index (the ID). The index is an open-addressing hash
// table with linear probing and backward-shift deletion, holding two
// slots per entry, one per tuple, at a load factor of at most 0.5.
type Table struct {
	slots  []slot
	conns  []Conn
	mask   uint32
	free   uint32 // head of the free list as index+1 (0: empty)
	n      int
	cursor int // reaper position
	k0, k1 uint64
}

// New returns a table for up to capacity connections, templates
// included; capacity is clamped to [1, MaxCapacity]. The seed keys the
// hash (give each table a random one so that clients cannot aim
// collisions at it). All memory is allocated here: 96 bytes per entry
// plus 32 to 64 bytes of index (32 when capacity is a power of two).
func New(capacity int, seed uint64) *Table {
	capacity = min(max(capacity, 1), MaxCapacity)
	size := 1 << bits.Len(uint(4*capacity-1)) // 2 slots per entry, load ≤ 0.5
	t := &Table{
		slots: make([]slot, size),
		conns: make([]Conn, capacity),
		mask:  uint32(size - 1),
		free:  1,
		k0:    splitmix(&seed),
		k1:    splitmix(&seed),
	}
	for i := range t.conns {
		t.conns[i].next = uint32(i + 2)
	}
	t.conns[capacity-1].next = 0
	return t
}

func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Len is the number of connections (and templates) in the table.
func (t *Table) Len() int { return t.n }

// Cap is the table's capacity.
func (t *Table) Cap() int { return len(t.conns) }

// hash packs the tuple's 13 bytes into two words and mixes them with two
// keyed multiply-xorshift rounds.
func (t *Table) hash(k *Tuple) uint32 {
	a := uint64(binary.BigEndian.Uint32(k.Src[:]))<<32 | uint64(binary.BigEndian.Uint32(k.Dst[:]))
	b := uint64(k.SPort)<<32 | uint64(k.DPort)<<16 | uint64(k.Proto)
	h := (a ^ t.k0) * 0x9e3779b97f4a7c15
	h = (h ^ h>>32 ^ b ^ t.k1) * 0xd6e8feb86659fd93
	return uint32(h ^ h>>32)
}

// key returns the tuple a slot's ref indexes.
func (t *Table) key(ref uint32) *Tuple {
	c := &t.conns[ref&^dirBit-1]
	if ref&dirBit != 0 {
		return &c.Reply
	}
	return &c.Orig
}

// Lookup finds the connection one of whose tuples is k and says which.
func (t *Table) Lookup(k *Tuple) (id uint32, dir Dir, ok bool) {
	h := t.hash(k)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.ref == 0 {
			return 0, 0, false
		}
		if s.tag == h && *t.key(s.ref) == *k {
			return s.ref&^dirBit - 1, Dir(s.ref >> 31), true
		}
	}
}

// probe returns the slot holding k, or the first empty slot of k's
// probe run.
func (t *Table) probe(k *Tuple, h uint32) (pos uint32, found bool) {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.ref == 0 {
			return i, false
		}
		if s.tag == h && *t.key(s.ref) == *k {
			return i, true
		}
	}
}

// Insert copies c into the table and returns its ID. It fails with
// ErrExists when either of c's tuples is already tracked (as either
// tuple of another connection) or when they are equal, and with ErrFull
// when the table is at capacity; a failed Insert changes nothing.
// Control and NControl start at zero (see Bind).
func (t *Table) Insert(c *Conn) (uint32, error) {
	if c.Orig == c.Reply {
		return 0, ErrExists
	}
	ho, hr := t.hash(&c.Orig), t.hash(&c.Reply)
	po, found := t.probe(&c.Orig, ho)
	if found {
		return 0, ErrExists
	}
	pr, found := t.probe(&c.Reply, hr)
	if found {
		return 0, ErrExists
	}
	if t.free == 0 {
		return 0, ErrFull
	}
	id := t.free - 1
	e := &t.conns[id]
	t.free = e.next
	gen := e.gen
	*e = *c
	e.Control, e.NControl = 0, 0
	e.next, e.gen, e.ctlGen = live, gen, 0
	t.slots[po] = slot{ref: id + 1, tag: ho}
	for t.slots[pr].ref != 0 { // the Orig slot took pr: go on along the run
		pr = (pr + 1) & t.mask
	}
	t.slots[pr] = slot{ref: (id + 1) | dirBit, tag: hr}
	t.n++
	return id, nil
}

// Get returns the entry with the given ID. The pointer stays valid, and
// names the same connection, until that ID is deleted; the caller may
// change any field but the tuples. Get of an ID that is not in use
// returns a zero entry that belongs to no one.
func (t *Table) Get(id uint32) *Conn { return &t.conns[id] }

// Live reports whether ID id is in use.
func (t *Table) Live(id uint32) bool {
	return int(id) < len(t.conns) && t.conns[id].next == live
}

// Delete removes the connection with the given ID; deleting an ID that
// is not in use does nothing. A connection bound to a template releases
// it (the template's NControl drops by one).
func (t *Table) Delete(id uint32) {
	e := &t.conns[id]
	if e.next != live {
		return
	}
	t.unindex(&e.Orig, id+1)
	t.unindex(&e.Reply, (id+1)|dirBit)
	t.unbind(e)
	*e = Conn{next: t.free, gen: e.gen + 1}
	t.free = id + 1
	t.n--
}

// unindex deletes the slot for key k that holds ref and closes the gap
// by shifting later slots of the run back (backward-shift deletion), so
// that every slot stays reachable from its home without crossing an
// empty slot and no tombstones are needed.
func (t *Table) unindex(k *Tuple, ref uint32) {
	i := t.hash(k) & t.mask
	for t.slots[i].ref != ref {
		i = (i + 1) & t.mask
	}
	for j := i; ; {
		j = (j + 1) & t.mask
		s := t.slots[j]
		if s.ref == 0 {
			break
		}
		// s may fill the hole at i unless its home lies cyclically in
		// (i, j]: then the hole is before its home and it must stay.
		if (j-s.tag)&t.mask >= (j-i)&t.mask {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = slot{}
}

// Bind makes template tpl control connection id, as ip_vs_control_add
// does: the template's NControl counts the connection until it is
// deleted, and the reaper keeps the template while it controls any. It
// does nothing unless both IDs are in use and distinct; binding a bound
// connection moves it.
func (t *Table) Bind(id, tpl uint32) {
	if id == tpl || !t.Live(id) || !t.Live(tpl) {
		return
	}
	c, p := &t.conns[id], &t.conns[tpl]
	t.unbind(c)
	c.Control, c.ctlGen = tpl+1, p.gen
	p.NControl++
}

// unbind releases c's template, if that template is still the one c was
// bound to (a deleted and reused template entry has another gen).
func (t *Table) unbind(c *Conn) {
	if c.Control == 0 {
		return
	}
	p := &t.conns[c.Control-1]
	if p.next == live && p.gen == c.ctlGen && p.NControl > 0 {
		p.NControl--
	}
	c.Control, c.ctlGen = 0, 0
}

// Reap is the incremental reaper: it looks at the next budget entries,
// from where the previous call stopped and wrapping around, and deletes
// those whose timer has run out (now ≥ Expires), calling expired (if not
// nil) on each just before deleting it so the caller can drop the
// destination's counts. A template that still controls connections is
// re-armed for its Timeout instead, as ip_vs_conn_expire does. So every
// entry expired at now is gone after ⌈Cap/budget⌉ calls. expired must not
// delete other entries. Reap returns the number deleted.
func (t *Table) Reap(now int64, budget int, expired func(id uint32, c *Conn)) int {
	n := 0
	for range min(budget, len(t.conns)) {
		id := uint32(t.cursor)
		if t.cursor++; t.cursor == len(t.conns) {
			t.cursor = 0
		}
		c := &t.conns[id]
		if c.next != live || now < c.Expires {
			continue
		}
		if c.Flags&FlagTemplate != 0 && c.NControl > 0 {
			c.Expires = now + int64(c.TimeoutSec)*1_000_000_000
			continue
		}
		if expired != nil {
			expired(id, c)
		}
		t.Delete(id)
		n++
	}
	return n
}

// Range calls fn for every entry in use, in ID order, until fn returns
// false. fn may delete the entry it is given.
func (t *Table) Range(fn func(id uint32, c *Conn) bool) {
	for i := range t.conns {
		if t.conns[i].next == live && !fn(uint32(i), &t.conns[i]) {
			return
		}
	}
}

// AppendSnapshot appends copies of up to limit entries in use to dst and
// returns it: what the owner hands another goroutine for listing
// (ipvsadm -L -c). It scans the whole table; AppendSnapshotAt does the
// same in pieces.
func (t *Table) AppendSnapshot(dst []Conn, limit int) []Conn {
	dst, _ = t.appendRange(dst, 0, len(t.conns), limit)
	return dst
}

// AppendSnapshotAt appends copies of the entries in use among IDs [pos,
// pos+scan) and returns dst and the position to continue from, which is
// Cap() when the scan is complete. An owner that must not stall its
// packets that long builds a listing over several calls; entries may
// come and go between calls, as in the kernel's /proc listing.
func (t *Table) AppendSnapshotAt(dst []Conn, pos, scan int) ([]Conn, int) {
	return t.appendRange(dst, pos, scan, len(t.conns))
}

func (t *Table) appendRange(dst []Conn, pos, scan, limit int) ([]Conn, int) {
	pos = min(max(pos, 0), len(t.conns))
	end := min(pos+max(scan, 0), len(t.conns))
	for n := 0; pos < end && n < limit; pos++ {
		if c := &t.conns[pos]; c.next == live {
			dst = append(dst, *c)
			d := &dst[len(dst)-1]
			d.next, d.gen, d.ctlGen = 0, 0, 0
			n++
		}
	}
	return dst, pos
}
