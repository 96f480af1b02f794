package conntrack

import (
	"errors"
	"math/bits"
)

// Tuple is what a packet says about its flow: IPv4 addresses, ports and
// protocol. It is comparable and 13 bytes of data.
type Tuple struct {
	Src, Dst     [4]byte
	SPort, DPort uint16
	Proto        uint8
}

// Dir says which tuple of a connection a lookup matched.
type Dir uint8

const (
	DirOrig  Dir = iota // client → virtual service
	DirReply            // real server → client (or local address)
)

// Conn flags.
const (
	// FlagInactive is IPVS's IP_VS_CONN_F_INACTIVE: the connection counts
	// in its destination's inactive connections.
	FlagInactive uint16 = 1 << iota
	// FlagTemplate marks a persistence template.
	FlagTemplate
	flagUsed // the entry is live (not on the free list)
)

// Conn is one connection. It holds no pointers, slices or strings, so the
// garbage collector never scans the table.
type Conn struct {
	Orig  Tuple // as received from the client
	Reply Tuple // as received from the real server
	Svc   uint32
	Dest  uint32
	// Control is the ID+1 of the persistence template this connection
	// was scheduled by (0: none); NControl counts, on a template, the
	// connections it controls: a template does not expire while > 0.
	Control  uint32
	NControl uint32
	Expires  int64 // monotonic ns
	// Timeout is the template's persistence timeout (templates only).
	Timeout   int64
	ClientIf  int32
	DestIf    int32
	ClientMAC [6]byte
	DestMAC   [6]byte
	Fwd       uint8
	State     State
	Flags     uint16
	next      uint32 // free list link
}

// Inactive reports whether the connection counts as inactive for its
// destination.
func (c *Conn) Inactive() bool { return c.Flags&FlagInactive != 0 }

// Expired reports whether the connection's timer has run out.
func (c *Conn) Expired(now int64) bool { return now >= c.Expires }

// Init prepares a new connection as IPVS binds it: inactive, in state
// NONE for TCP (UDP for UDP), expiring after that state's timeout.
func (c *Conn) Init(now int64, to *Timeouts) {
	c.Flags |= FlagInactive
	if c.Orig.Proto == 17 {
		c.State = StateUDP
	} else {
		c.State = StateNone
	}
	c.Expires = now + to.Timeout(c.State)
}

// Advance moves the connection's state for a packet in direction dir
// with TCP flags (ignored for UDP), re-arms its timer, and keeps IPVS's
// active/inactive rule: active exactly while ESTABLISHED. It reports
// whether the connection was and is active, so the caller can move its
// destination's counts.
func (c *Conn) Advance(dir PacketDir, tcpFlags uint8, now int64, to *Timeouts) (wasActive, isActive bool) {
	wasActive = c.Flags&FlagInactive == 0
	if c.State == StateUDP {
		c.Expires = now + to.UDP
		return wasActive, wasActive
	}
	c.State = TCPNext(c.State, dir, tcpFlags)
	c.Expires = now + to.Timeout(c.State)
	isActive = c.State == StateEstablished
	if isActive {
		c.Flags &^= FlagInactive
	} else {
		c.Flags |= FlagInactive
	}
	return wasActive, isActive
}

// Errors Insert returns.
var (
	ErrFull   = errors.New("connection table full")
	ErrExists = errors.New("connection tuple already tracked")
)

// slot is one index entry: the entry index+1 (0 = empty), with the
// direction in the top bit, and a hash tag to skip most tuple compares.
type slot struct {
	ref uint32
	tag uint32
}

const dirBit = 1 << 31

// Table is one worker's connection table.
type Table struct {
	conns []Conn
	free  uint32 // head of the free list, as index+1 (0: empty)
	n     int
	slots []slot
	mask  uint32
	seed  uint64
	reap  int // reaper cursor
}

// New returns a table for up to capacity connections (templates
// included); its index has at least twice as many slots.
func New(capacity int, seed uint64) *Table {
	if capacity < 1 {
		capacity = 1
	}
	if capacity > dirBit-1 {
		capacity = dirBit - 1
	}
	size := 1 << bits.Len(uint(capacity*4-1)) // load ≤ 0.5 with two keys per entry
	t := &Table{conns: make([]Conn, capacity), slots: make([]slot, size), mask: uint32(size - 1), seed: seed | 1}
	for i := range t.conns {
		t.conns[i].next = uint32(i + 2)
	}
	t.conns[capacity-1].next = 0
	t.free = 1
	return t
}

// Len is the number of live entries.
func (t *Table) Len() int { return t.n }

// Cap is the table's capacity.
func (t *Table) Cap() int { return len(t.conns) }

func (t *Table) hash(k *Tuple) uint32 {
	a := uint64(k.Src[0])<<56 | uint64(k.Src[1])<<48 | uint64(k.Src[2])<<40 | uint64(k.Src[3])<<32 |
		uint64(k.Dst[0])<<24 | uint64(k.Dst[1])<<16 | uint64(k.Dst[2])<<8 | uint64(k.Dst[3])
	b := uint64(k.SPort)<<24 | uint64(k.DPort)<<8 | uint64(k.Proto)
	h := (a ^ t.seed) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	h = (h ^ b ^ t.seed>>7) * 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint32(h)
}

func (t *Table) tuple(ref uint32) *Tuple {
	c := &t.conns[(ref&^dirBit)-1]
	if ref&dirBit != 0 {
		return &c.Reply
	}
	return &c.Orig
}

// Lookup finds the connection one of whose tuples is k.
func (t *Table) Lookup(k *Tuple) (id uint32, dir Dir, ok bool) {
	h := t.hash(k)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.ref == 0 {
			return 0, 0, false
		}
		if s.tag == h && *t.tuple(s.ref) == *k {
			id = (s.ref &^ dirBit) - 1
			if s.ref&dirBit != 0 {
				dir = DirReply
			}
			return id, dir, true
		}
	}
}

func (t *Table) find(k *Tuple) bool {
	_, _, ok := t.Lookup(k)
	return ok
}

func (t *Table) put(k *Tuple, ref uint32) {
	h := t.hash(k)
	i := h & t.mask
	for t.slots[i].ref != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = slot{ref: ref, tag: h}
}

// remove deletes the index slot for k that refers to ref, shifting later
// slots of the probe run back so no tombstone is needed.
func (t *Table) remove(k *Tuple, ref uint32) {
	h := t.hash(k)
	i := h & t.mask
	for t.slots[i].ref != ref {
		i = (i + 1) & t.mask
	}
	for {
		t.slots[i] = slot{}
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.slots[j]
			if s.ref == 0 {
				return
			}
			home := s.tag & t.mask
			// Move s back into the hole at i unless its home lies
			// cyclically in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = s
				i = j
				break
			}
		}
	}
}

// Insert adds c and returns its ID. Both of c's tuples must be new.
func (t *Table) Insert(c *Conn) (uint32, error) {
	if c.Orig == c.Reply || t.find(&c.Orig) || t.find(&c.Reply) {
		return 0, ErrExists
	}
	if t.free == 0 {
		return 0, ErrFull
	}
	id := t.free - 1
	e := &t.conns[id]
	t.free = e.next
	*e = *c
	e.Flags |= flagUsed
	e.next = 0
	t.put(&e.Orig, id+1)
	t.put(&e.Reply, (id+1)|dirBit)
	t.n++
	return id, nil
}

// Get returns the connection with the given ID; the pointer stays valid
// until that ID is deleted.
func (t *Table) Get(id uint32) *Conn { return &t.conns[id] }

// Delete removes the connection with the given ID.
func (t *Table) Delete(id uint32) {
	e := &t.conns[id]
	if e.Flags&flagUsed == 0 {
		return
	}
	t.remove(&e.Orig, id+1)
	t.remove(&e.Reply, (id+1)|dirBit)
	*e = Conn{next: t.free}
	t.free = id + 1
	t.n--
}

// Reap looks at up to budget entries from where the last call stopped and
// deletes the expired ones, calling expired on each first. A template
// that still controls connections is re-armed instead, as IPVS does. It
// returns the number deleted.
func (t *Table) Reap(now int64, budget int, expired func(id uint32, c *Conn)) int {
	n := 0
	for k := 0; k < budget && k < len(t.conns); k++ {
		id := uint32(t.reap)
		t.reap++
		if t.reap == len(t.conns) {
			t.reap = 0
		}
		c := &t.conns[id]
		if c.Flags&flagUsed == 0 || now < c.Expires {
			continue
		}
		if c.Flags&FlagTemplate != 0 && c.NControl > 0 {
			c.Expires = now + c.Timeout
			continue
		}
		if expired != nil {
			expired(id, c)
		}
		if c.Control != 0 {
			if tpl := &t.conns[c.Control-1]; tpl.Flags&flagUsed != 0 && tpl.NControl > 0 {
				tpl.NControl--
			}
		}
		t.Delete(id)
		n++
	}
	return n
}

// Range calls fn for every live connection until fn returns false.
func (t *Table) Range(fn func(id uint32, c *Conn) bool) {
	for i := range t.conns {
		if t.conns[i].Flags&flagUsed != 0 && !fn(uint32(i), &t.conns[i]) {
			return
		}
	}
}

// AppendSnapshot appends copies of up to max live connections to dst.
func (t *Table) AppendSnapshot(dst []Conn, max int) []Conn {
	t.Range(func(_ uint32, c *Conn) bool {
		if len(dst) >= max {
			return false
		}
		dst = append(dst, *c)
		return true
	})
	return dst
}

// IsTemplate reports whether c is a persistence template.
func (c *Conn) IsTemplate() bool { return c.Flags&FlagTemplate != 0 }
