package connsync

import (
	"bytes"
	"testing"
)

// seedDatagrams are well-formed datagrams of each kind for FuzzDecode.
// The target also has checked-in seeds under testdata/fuzz/FuzzDecode/,
// written by TestWriteFuzzSeeds.
func seedDatagrams() [][]byte {
	h := Header{Kind: KindConns, SyncID: 7, BootID: 0x5eed, Seq: 1}
	conns := Encode(nil, h, recs(3), testKey)
	h.Kind, h.Seq = KindRequest, 2
	req := Encode(nil, h, nil, testKey)
	h.Kind, h.Seq = KindBulkEnd, 3
	end := Encode(nil, h, nil, testKey)
	h.Kind, h.Seq = KindConns, 4
	full := Encode(nil, h, recs(MaxRecords(0)), testKey)
	return [][]byte{conns, req, end, full}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to the same bytes, so no two datagrams mean the same thing.
// The fuzzer cannot forge a MAC, so with fixMAC set the target recomputes
// it over the mutated bytes: that lets mutations reach the checks behind
// the MAC (kind, count, records).
func FuzzDecode(f *testing.F) {
	for _, p := range seedDatagrams() {
		f.Add(p, false)
		f.Add(p, true)
	}
	out := make([]Record, MaxCount)
	f.Fuzz(func(t *testing.T, pkt []byte, fixMAC bool) {
		if fixMAC && len(pkt) >= overhead && len(pkt) <= MaxDatagram {
			pkt = remac(bytes.Clone(pkt))
		}
		var h Header
		n, r := Decode(pkt, testKey, 7, &h, out)
		if r >= NumDropReasons {
			t.Fatalf("reason %d out of range", r)
		}
		if r != DropNone {
			if n != 0 {
				t.Fatalf("refused (%v) with n = %d", r, n)
			}
			return
		}
		if again := Encode(nil, h, out[:n], testKey); !bytes.Equal(again, pkt) {
			t.Fatalf("accepted %x\nre-encodes to %x", pkt, again)
		}
	})
}
