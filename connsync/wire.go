package connsync

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"slices"
)

// Wire sizes and limits. Version 2 added the firewall mark to the record
// (40 bytes became 44): a version 1 peer's datagrams are refused as
// DropBadVersion, which names the cause, before their length is checked.
const (
	Version       = 2
	HeaderLen     = 16
	RecordLen     = 44
	MACLen        = 16
	MaxCount      = 255                                     // records in one datagram: Count is one byte
	MaxDatagram   = HeaderLen + MaxCount*RecordLen + MACLen // 11252
	DefaultMaxLen = 1500 - 20 - 8                           // Ethernet MTU less IPv4 and UDP headers
	overhead      = HeaderLen + MACLen                      // bytes of a datagram that are not records
	minDatagram   = overhead + RecordLen                    // smallest KindConns datagram
	macInputMax   = MaxDatagram - MACLen                    // most bytes the MAC covers
	hmacBlock     = 64                                      // SHA-256 block size
)

var magic = [4]byte{'U', 'V', 'S', 'C'}

// Header field offsets.
const (
	hMagic   = 0
	hVersion = 4
	hKind    = 5
	hSyncID  = 6
	hCount   = 7
	hBootID  = 8
	hSeq     = 12
)

// Record field offsets.
const (
	rProto   = 0
	rState   = 1
	rFwd     = 2
	rNetmask = 3
	rFlags   = 4
	rCPort   = 6
	rCAddr   = 8
	rVAddr   = 12
	rVPort   = 16
	rDPort   = 18
	rDAddr   = 20
	rLAddr   = 24
	rLPort   = 28
	rMAC     = 30
	rTimeout = 36
	rFWMark  = 40
)

// Record is one connection as the wire carries it: fixed size and free of
// pointers, so queues of records are flat arrays the garbage collector
// never scans.
type Record struct {
	Proto     uint8  // 6 TCP, 17 UDP; 0 for a persistence template
	State     uint8  // conntrack state number (opaque here)
	Fwd       uint8  // forwarding method (opaque here)
	Flags     uint16 // opaque flags (template, no-output, ...)
	CAddr     [4]byte
	CPort     uint16 // client
	VAddr     [4]byte
	VPort     uint16 // virtual service
	DAddr     [4]byte
	DPort     uint16 // real server
	LAddr     [4]byte
	LPort     uint16  // FULLNAT local endpoint (zero otherwise)
	ClientMAC [6]byte // the client-side next hop's MAC as the master saw it
	Timeout   uint32  // seconds left before the entry expires on the sender
	Netmask   uint8   // persistence granularity bits, for templates
	// FWMark is the firewall mark of the connection's service, 0 for a
	// service with an address. A fwmark service has no address to find
	// it by: VAddr and VPort are the endpoint the client used, or, for
	// a template, the mark written as an address and port 0.
	FWMark uint32
}

// Kind is what a datagram carries.
type Kind uint8

const (
	// KindConns carries one or more records.
	KindConns Kind = 1 + iota
	// KindRequest asks the master for its whole table: a backup that has
	// just started sends it.
	KindRequest
	// KindBulkEnd ends the dump that answers a KindRequest.
	KindBulkEnd
)

func (k Kind) String() string {
	switch k {
	case KindConns:
		return "conns"
	case KindRequest:
		return "request"
	case KindBulkEnd:
		return "bulk_end"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Header is a datagram's header less the fields Encode derives (magic,
// version, count).
type Header struct {
	Kind   Kind
	SyncID uint8
	BootID uint32 // random per sending process
	Seq    uint32 // per sender, one per datagram
}

// DropReason names why Decode refused a datagram. Every refused datagram
// has exactly one reason.
type DropReason uint8

const (
	DropNone        DropReason = iota // accepted
	DropShort                         // shorter than a header and a MAC
	DropBadMagic                      // not "UVSC": not a uvs sync datagram
	DropBadVersion                    // a wire version this build does not speak
	DropWrongSyncID                   // another director pair's datagram
	DropBadLength                     // length disagrees with Count
	DropBadMAC                        // forged, corrupted, or keyed with another secret
	DropBadKind                       // authentic but of a kind this build does not know
	DropBadCount                      // Count wrong for the kind (records in a request, none in conns)
	DropNoRoom                        // the caller's record buffer is shorter than Count
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"none", "short", "bad_magic", "bad_version", "wrong_syncid", "bad_length",
	"bad_mac", "bad_kind", "bad_count", "no_room",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// MaxRecords returns how many records fit in a datagram of at most maxLen
// bytes; maxLen ≤ 0 means DefaultMaxLen. It is 0 when not even one fits.
func MaxRecords(maxLen int) int {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	if maxLen < minDatagram {
		return 0
	}
	return min((maxLen-overhead)/RecordLen, MaxCount)
}

// datagramLen is the wire length of a datagram with n records.
func datagramLen(n int) int { return overhead + n*RecordLen }

// Encode appends the datagram for h and recs, authenticated with key, to b
// and returns the extended slice; pass b[:0] to reuse a buffer. It
// allocates only when b lacks the capacity. h.Kind is written as given:
// Decode, not Encode, enforces which kinds carry records.
func Encode(b []byte, h Header, recs []Record, key []byte) []byte {
	if len(recs) > MaxCount {
		panic(fmt.Sprintf("connsync: Encode got %d records, want at most %d", len(recs), MaxCount))
	}
	start, n := len(b), datagramLen(len(recs))
	b = slices.Grow(b, n)[:start+n]
	p := b[start:]
	copy(p[hMagic:], magic[:])
	p[hVersion] = Version
	p[hKind] = byte(h.Kind)
	p[hSyncID] = h.SyncID
	p[hCount] = byte(len(recs))
	binary.BigEndian.PutUint32(p[hBootID:], h.BootID)
	binary.BigEndian.PutUint32(p[hSeq:], h.Seq)
	for i := range recs {
		putRecord(p[HeaderLen+i*RecordLen:], &recs[i])
	}
	mac(p[n-MACLen:], key, p[:n-MACLen])
	return b
}

// Decode checks pkt and, when it is accepted (DropNone), fills h and the
// first n elements of recs. The checks run cheapest first and the MAC is
// verified before the kind or any record is interpreted, so unauthenticated
// input only ever reaches the length arithmetic. Decode never allocates.
func Decode(pkt []byte, key []byte, syncID uint8, h *Header, recs []Record) (n int, r DropReason) {
	if len(pkt) < overhead {
		return 0, DropShort
	}
	if [4]byte(pkt[hMagic:]) != magic {
		return 0, DropBadMagic
	}
	if pkt[hVersion] != Version {
		return 0, DropBadVersion
	}
	if pkt[hSyncID] != syncID {
		return 0, DropWrongSyncID
	}
	count := int(pkt[hCount])
	if len(pkt) != datagramLen(count) {
		return 0, DropBadLength
	}
	var want [MACLen]byte
	mac(want[:], key, pkt[:len(pkt)-MACLen])
	if subtle.ConstantTimeCompare(want[:], pkt[len(pkt)-MACLen:]) != 1 {
		return 0, DropBadMAC
	}
	switch k := Kind(pkt[hKind]); k {
	case KindConns:
		if count == 0 {
			return 0, DropBadCount
		}
	case KindRequest, KindBulkEnd:
		if count != 0 {
			return 0, DropBadCount
		}
	default:
		return 0, DropBadKind
	}
	if count > len(recs) {
		return 0, DropNoRoom
	}
	*h = Header{
		Kind:   Kind(pkt[hKind]),
		SyncID: pkt[hSyncID],
		BootID: binary.BigEndian.Uint32(pkt[hBootID:]),
		Seq:    binary.BigEndian.Uint32(pkt[hSeq:]),
	}
	for i := range count {
		getRecord(pkt[HeaderLen+i*RecordLen:], &recs[i])
	}
	return count, DropNone
}

func putRecord(b []byte, r *Record) {
	_ = b[RecordLen-1]
	b[rProto] = r.Proto
	b[rState] = r.State
	b[rFwd] = r.Fwd
	b[rNetmask] = r.Netmask
	binary.BigEndian.PutUint16(b[rFlags:], r.Flags)
	binary.BigEndian.PutUint16(b[rCPort:], r.CPort)
	copy(b[rCAddr:], r.CAddr[:])
	copy(b[rVAddr:], r.VAddr[:])
	binary.BigEndian.PutUint16(b[rVPort:], r.VPort)
	binary.BigEndian.PutUint16(b[rDPort:], r.DPort)
	copy(b[rDAddr:], r.DAddr[:])
	copy(b[rLAddr:], r.LAddr[:])
	binary.BigEndian.PutUint16(b[rLPort:], r.LPort)
	copy(b[rMAC:], r.ClientMAC[:])
	binary.BigEndian.PutUint32(b[rTimeout:], r.Timeout)
	binary.BigEndian.PutUint32(b[rFWMark:], r.FWMark)
}

func getRecord(b []byte, r *Record) {
	_ = b[RecordLen-1]
	*r = Record{
		Proto:     b[rProto],
		State:     b[rState],
		Fwd:       b[rFwd],
		Netmask:   b[rNetmask],
		Flags:     binary.BigEndian.Uint16(b[rFlags:]),
		CPort:     binary.BigEndian.Uint16(b[rCPort:]),
		CAddr:     [4]byte(b[rCAddr:]),
		VAddr:     [4]byte(b[rVAddr:]),
		VPort:     binary.BigEndian.Uint16(b[rVPort:]),
		DPort:     binary.BigEndian.Uint16(b[rDPort:]),
		DAddr:     [4]byte(b[rDAddr:]),
		LAddr:     [4]byte(b[rLAddr:]),
		LPort:     binary.BigEndian.Uint16(b[rLPort:]),
		ClientMAC: [6]byte(b[rMAC:]),
		Timeout:   binary.BigEndian.Uint32(b[rTimeout:]),
		FWMark:    binary.BigEndian.Uint32(b[rFWMark:]),
	}
}

// mac writes the first len(dst) bytes of HMAC-SHA256(key, msg) (RFC 2104)
// to dst. It is built on sha256.Sum256 with stack buffers rather than
// crypto/hmac because hmac.New allocates its two hash states on every
// call, and Encode and Decode take a plain key and must not allocate. A
// datagram is at most MaxDatagram bytes, so the copy stays small.
func mac(dst, key, msg []byte) {
	if len(msg) > macInputMax {
		panic(fmt.Sprintf("connsync: MAC input got %d bytes, want at most %d", len(msg), macInputMax))
	}
	var k [hmacBlock]byte
	if len(key) > hmacBlock {
		s := sha256.Sum256(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	var in [hmacBlock + macInputMax]byte
	for i := range k {
		in[i] = k[i] ^ 0x36
	}
	n := copy(in[hmacBlock:], msg)
	inner := sha256.Sum256(in[:hmacBlock+n])
	var out [hmacBlock + sha256.Size]byte
	for i := range k {
		out[i] = k[i] ^ 0x5c
	}
	copy(out[hmacBlock:], inner[:])
	sum := sha256.Sum256(out[:])
	copy(dst, sum[:])
}
