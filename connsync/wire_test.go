package connsync

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
)

var testKey = DeriveKey("vrrp-pass", 7)

// rec builds a record whose fields all differ, so a swapped or misplaced
// field shows in a round trip.
func rec(i int) Record {
	b := byte(i)
	return Record{
		Proto: 6, State: 3 + b, Fwd: 2, Flags: 0x8001 ^ uint16(i),
		CAddr: [4]byte{198, 51, 100, b}, CPort: 40000 + uint16(i),
		VAddr: [4]byte{192, 0, 2, 10}, VPort: 80,
		DAddr: [4]byte{10, 0, 0, 1 + b}, DPort: 8080,
		LAddr: [4]byte{10, 0, 1, 1}, LPort: 30000 + uint16(i),
		ClientMAC: [6]byte{2, 0, 0, 0, 0, b},
		Timeout:   900 + uint32(i), Netmask: 32,
		FWMark: 0x10203 + uint32(i),
	}
}

func recs(n int) []Record {
	r := make([]Record, n)
	for i := range r {
		r[i] = rec(i)
	}
	return r
}

// randRec fills every field, including the bits the daemon might use in
// State, Flags and Netmask, from rng.
func randRec(rng *rand.Rand) Record {
	var r Record
	var b [RecordLen]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	getRecord(b[:], &r)
	return r
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	template := Record{Proto: 0, Flags: 0x1000, CAddr: [4]byte{198, 51, 100, 0}, VAddr: [4]byte{192, 0, 2, 10}, VPort: 443, DAddr: [4]byte{10, 0, 0, 5}, Timeout: 360, Netmask: 24}
	// A fwmark service's template: keyed by mark 0x102 as an address,
	// port 0; its server has no port.
	markTemplate := Record{Proto: 0, Flags: 0x1000, CAddr: [4]byte{198, 51, 100, 0}, VAddr: [4]byte{0, 0, 1, 2}, DAddr: [4]byte{10, 0, 0, 5}, Timeout: 360, Netmask: 24, FWMark: 0x102}
	random := make([]Record, MaxCount)
	for i := range random {
		random[i] = randRec(rng)
	}
	for _, tc := range []struct {
		name string
		h    Header
		recs []Record
	}{
		{"one tcp", Header{Kind: KindConns, SyncID: 7, BootID: 0xdeadbeef, Seq: 1}, recs(1)},
		{"template", Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 2}, []Record{template}},
		{"fwmark template", Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 3}, []Record{markTemplate}},
		{"largest mark", Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 4}, []Record{{Proto: 17, FWMark: 0xffffffff}}},
		{"full default datagram", Header{Kind: KindConns, SyncID: 7, BootID: 2, Seq: 1 << 31}, recs(MaxRecords(0))},
		{"max count random", Header{Kind: KindConns, SyncID: 7, BootID: 3, Seq: 0xffffffff}, random},
		{"request", Header{Kind: KindRequest, SyncID: 7, BootID: 4, Seq: 9}, nil},
		{"bulk end", Header{Kind: KindBulkEnd, SyncID: 7, BootID: 5, Seq: 10}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			pkt := Encode(prefix, tc.h, tc.recs, testKey)
			if !bytes.Equal(pkt[:len(prefix)], prefix) {
				t.Fatal("Encode overwrote the bytes it appends to")
			}
			pkt = pkt[len(prefix):]
			if len(pkt) != HeaderLen+len(tc.recs)*RecordLen+MACLen {
				t.Fatalf("len %d, want %d", len(pkt), HeaderLen+len(tc.recs)*RecordLen+MACLen)
			}
			var h Header
			out := make([]Record, MaxCount)
			n, r := Decode(pkt, testKey, 7, &h, out)
			if r != DropNone {
				t.Fatalf("Decode: %v", r)
			}
			if h != tc.h || n != len(tc.recs) {
				t.Fatalf("header %+v n %d, want %+v n %d", h, n, tc.h, len(tc.recs))
			}
			for i := range n {
				if out[i] != tc.recs[i] {
					t.Fatalf("record %d: %+v, want %+v", i, out[i], tc.recs[i])
				}
			}
			if again := Encode(nil, h, out[:n], testKey); !bytes.Equal(again, pkt) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

// TestWireLayout pins the byte layout doc.go draws.
func TestWireLayout(t *testing.T) {
	r := rec(1)
	pkt := Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 0x01020304, Seq: 0x05060708}, []Record{r}, testKey)
	wantHdr := []byte{'U', 'V', 'S', 'C', 2, 1, 7, 1, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(pkt[:HeaderLen], wantHdr) {
		t.Fatalf("header % x, want % x", pkt[:HeaderLen], wantHdr)
	}
	be := binary.BigEndian
	wantRec := []byte{6, 4, 2, 32}
	wantRec = be.AppendUint16(wantRec, r.Flags)
	wantRec = be.AppendUint16(wantRec, r.CPort)
	wantRec = append(wantRec, r.CAddr[:]...)
	wantRec = append(wantRec, r.VAddr[:]...)
	wantRec = be.AppendUint16(wantRec, r.VPort)
	wantRec = be.AppendUint16(wantRec, r.DPort)
	wantRec = append(wantRec, r.DAddr[:]...)
	wantRec = append(wantRec, r.LAddr[:]...)
	wantRec = be.AppendUint16(wantRec, r.LPort)
	wantRec = append(wantRec, r.ClientMAC[:]...)
	wantRec = be.AppendUint32(wantRec, r.Timeout)
	wantRec = be.AppendUint32(wantRec, r.FWMark)
	if len(wantRec) != RecordLen || RecordLen%4 != 0 {
		t.Fatalf("the layout has %d bytes, RecordLen %d: want them equal and a multiple of 4", len(wantRec), RecordLen)
	}
	if got := pkt[HeaderLen : HeaderLen+RecordLen]; !bytes.Equal(got, wantRec) {
		t.Fatalf("record % x, want % x", got, wantRec)
	}
	m := hmac.New(sha256.New, testKey)
	m.Write(pkt[:HeaderLen+RecordLen])
	if got, want := pkt[HeaderLen+RecordLen:], m.Sum(nil)[:MACLen]; !bytes.Equal(got, want) {
		t.Fatalf("MAC % x, want % x", got, want)
	}
}

func TestMaxRecords(t *testing.T) {
	for _, tc := range []struct{ maxLen, want int }{
		{0, 32}, {-1, 32}, {DefaultMaxLen, 32}, {DefaultMaxLen - 1, 32},
		{1440, 32}, {1439, 31}, {1484, 33},
		{minDatagram - 1, 0}, {minDatagram, 1}, {9000 - 28, 203},
		{MaxDatagram, MaxCount}, {65507, MaxCount},
	} {
		if got := MaxRecords(tc.maxLen); got != tc.want {
			t.Errorf("MaxRecords(%d) = %d, want %d", tc.maxLen, got, tc.want)
		}
		if n := MaxRecords(tc.maxLen); n > 0 && tc.maxLen > 0 && datagramLen(n) > tc.maxLen {
			t.Errorf("MaxRecords(%d) = %d: %d bytes", tc.maxLen, n, datagramLen(n))
		}
	}
	if n := MaxRecords(0); datagramLen(n) != 1440 || datagramLen(n+1) != 1484 {
		t.Errorf("the default datagram is %d bytes, one more record %d: doc.go says 1440 and 1484", datagramLen(n), datagramLen(n+1))
	}
	if MaxDatagram != 11252 {
		t.Errorf("MaxDatagram %d: doc.go says 11252", MaxDatagram)
	}
}

// remac recomputes a crafted datagram's MAC, so that a test reaches the
// checks behind it.
func remac(pkt []byte) []byte {
	mac(pkt[len(pkt)-MACLen:], testKey, pkt[:len(pkt)-MACLen])
	return pkt
}

// v1Datagram is n records as a version 1 peer sends them: the same
// header, records of 40 bytes (this layout less the firewall mark) and a
// good MAC, so only the version tells it apart.
func v1Datagram(n int) []byte {
	const v1RecordLen = 40
	p := Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 1}, nil, testKey)[:HeaderLen]
	p[hVersion], p[hCount] = 1, byte(n)
	var b [RecordLen]byte
	for i := range n {
		r := rec(i)
		putRecord(b[:], &r)
		p = append(p, b[:v1RecordLen]...)
	}
	return remac(append(p, make([]byte, MACLen)...))
}

func TestDecodeDrops(t *testing.T) {
	good := func() []byte {
		return Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 1}, recs(2), testKey)
	}
	set := func(off int, v byte, fix bool) []byte {
		p := good()
		p[off] = v
		if fix {
			remac(p)
		}
		return p
	}
	crafted := func(k Kind, n int) []byte { return Encode(nil, Header{Kind: k, SyncID: 7}, recs(n), testKey) }
	buf := make([]Record, 2)
	tests := []struct {
		name string
		pkt  []byte
		key  []byte
		recs []Record
		want DropReason
	}{
		{"accepted", good(), testKey, buf, DropNone},
		{"empty", nil, testKey, buf, DropShort},
		{"header only", good()[:HeaderLen], testKey, buf, DropShort},
		{"one short of a MAC", good()[:overhead-1], testKey, buf, DropShort},
		{"magic", set(0, 'X', true), testKey, buf, DropBadMagic},
		{"version 0", set(hVersion, 0, true), testKey, buf, DropBadVersion},
		{"version 1", set(hVersion, 1, true), testKey, buf, DropBadVersion},
		{"version 3", set(hVersion, 3, true), testKey, buf, DropBadVersion},
		{"version 1 peer", v1Datagram(2), testKey, buf, DropBadVersion},
		{"syncid", set(hSyncID, 8, true), testKey, buf, DropWrongSyncID},
		{"count above length", set(hCount, 3, false), testKey, buf, DropBadLength},
		{"count below length", set(hCount, 1, false), testKey, buf, DropBadLength},
		{"trailing byte", append(good(), 0), testKey, buf, DropBadLength},
		{"truncated", good()[:len(good())-1], testKey, buf, DropBadLength},
		{"other key", good(), DeriveKey("other", 7), buf, DropBadMAC},
		{"tampered kind", set(hKind, byte(KindBulkEnd), false), testKey, buf, DropBadMAC},
		{"kind 0", set(hKind, 0, true), testKey, buf, DropBadKind},
		{"kind 4", set(hKind, 4, true), testKey, buf, DropBadKind},
		{"conns without records", crafted(KindConns, 0), testKey, buf, DropBadCount},
		{"request with records", crafted(KindRequest, 1), testKey, buf, DropBadCount},
		{"bulk end with records", crafted(KindBulkEnd, 2), testKey, buf, DropBadCount},
		{"buffer too small", good(), testKey, buf[:1], DropNoRoom},
	}
	seen := map[DropReason]bool{}
	for _, tc := range tests {
		var h Header
		n, r := Decode(tc.pkt, tc.key, 7, &h, tc.recs)
		if r != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, r, tc.want)
		}
		if r != DropNone && (n != 0 || h != Header{}) {
			t.Errorf("%s: refused with n %d, header %+v: want nothing written", tc.name, n, h)
		}
		seen[r] = true
	}
	for r := range NumDropReasons {
		if !seen[r] {
			t.Errorf("no test produces %v", r)
		}
	}
}

func TestTamper(t *testing.T) {
	pkt := Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 1}, recs(3), testKey)
	out := make([]Record, 3)
	for i := range pkt {
		for _, bit := range []byte{0x01, 0x80} {
			p := bytes.Clone(pkt)
			p[i] ^= bit
			var h Header
			_, r := Decode(p, testKey, 7, &h, out)
			switch {
			case i < hVersion:
				if r != DropBadMagic {
					t.Errorf("byte %d bit %#x: %v, want bad_magic", i, bit, r)
				}
			case i == hVersion:
				if r != DropBadVersion {
					t.Errorf("byte %d bit %#x: %v, want bad_version", i, bit, r)
				}
			case i == hSyncID:
				if r != DropWrongSyncID {
					t.Errorf("byte %d bit %#x: %v, want wrong_syncid", i, bit, r)
				}
			case i == hCount:
				if r != DropBadLength {
					t.Errorf("byte %d bit %#x: %v, want bad_length", i, bit, r)
				}
			default: // kind, boot ID, sequence, records, the MAC itself
				if r != DropBadMAC {
					t.Errorf("byte %d bit %#x: %v, want bad_mac", i, bit, r)
				}
			}
		}
	}
}

// TestMAC checks the allocation-free HMAC against crypto/hmac for keys
// around the block size (longer keys are hashed first) and every message
// length a datagram can have.
func TestMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	msg := make([]byte, macInputMax)
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	for _, klen := range []int{0, 1, 32, 63, 64, 65, 200} {
		key := msg[:klen]
		for n := 0; n <= macInputMax; n += 1 + n/7 {
			var got [MACLen]byte
			mac(got[:], key, msg[:n])
			m := hmac.New(sha256.New, key)
			m.Write(msg[:n])
			if want := m.Sum(nil)[:MACLen]; !bytes.Equal(got[:], want) {
				t.Fatalf("key %d bytes, msg %d bytes: % x, want % x", klen, n, got, want)
			}
		}
	}
}

func TestDeriveKey(t *testing.T) {
	k := DeriveKey("secret", 1)
	if len(k) != sha256.Size {
		t.Fatalf("key is %d bytes, want %d", len(k), sha256.Size)
	}
	if !bytes.Equal(k, DeriveKey("secret", 1)) {
		t.Fatal("DeriveKey is not deterministic")
	}
	for _, other := range [][]byte{DeriveKey("secret", 2), DeriveKey("secreT", 1), DeriveKey("", 1)} {
		if bytes.Equal(k, other) {
			t.Fatal("different inputs derive the same key")
		}
	}
	want := sha256.Sum256([]byte("uvs connsync v1 key\x00\x01secret"))
	if !bytes.Equal(k, want[:]) {
		t.Fatalf("DeriveKey = %x, want %x: the derivation is part of the protocol", k, want)
	}
}

func TestStrings(t *testing.T) {
	for r := range NumDropReasons {
		if s := r.String(); s == "" || strings.HasPrefix(s, "DropReason(") {
			t.Errorf("DropReason %d has no name", r)
		}
	}
	if s := NumDropReasons.String(); s != "DropReason(10)" {
		t.Errorf("NumDropReasons.String() = %q", s)
	}
	for k, want := range map[Kind]string{KindConns: "conns", KindRequest: "request", KindBulkEnd: "bulk_end", 9: "Kind(9)"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), want)
		}
	}
}

func TestEncodePanicsOnTooMany(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Encode accepted 256 records")
		}
	}()
	Encode(nil, Header{Kind: KindConns}, make([]Record, MaxCount+1), testKey)
}

func TestCodecAllocs(t *testing.T) {
	in := recs(MaxRecords(0))
	out := make([]Record, MaxCount)
	buf := make([]byte, 0, DefaultMaxLen)
	var h Header
	if a := testing.AllocsPerRun(100, func() {
		buf = Encode(buf[:0], Header{Kind: KindConns, SyncID: 7}, in, testKey)
		if _, r := Decode(buf, testKey, 7, &h, out); r != DropNone {
			t.Fatal(r)
		}
	}); a != 0 {
		t.Fatalf("Encode+Decode: %v allocs, want 0", a)
	}
}

func BenchmarkEncode(b *testing.B) {
	in := recs(MaxRecords(0))
	buf := make([]byte, 0, DefaultMaxLen)
	b.ReportAllocs()
	b.SetBytes(int64(datagramLen(len(in))))
	for b.Loop() {
		buf = Encode(buf[:0], Header{Kind: KindConns, SyncID: 7}, in, testKey)
	}
}

func BenchmarkDecode(b *testing.B) {
	pkt := Encode(nil, Header{Kind: KindConns, SyncID: 7}, recs(MaxRecords(0)), testKey)
	out := make([]Record, MaxCount)
	var h Header
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, r := Decode(pkt, testKey, 7, &h, out); r != DropNone {
			b.Fatal(r)
		}
	}
}
