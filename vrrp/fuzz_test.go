package vrrp

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// seedAdverts are the packets the checked-in corpus of FuzzParseAdvert
// holds: valid v2 (with and without a password) and v3 adverts, and broken
// ones near each check.
func seedAdverts() [][]byte {
	v2 := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 2, VRID: 51, Priority: 100, AdvertInt: time.Second, Addrs: []netip.Addr{vip1}})
	v2auth := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 2, VRID: 51, Priority: 150, AdvertInt: time.Second, AuthType: AuthPass, AuthData: pass8, Addrs: []netip.Addr{vip1, vip2}})
	v3 := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 3, VRID: 7, Priority: 255, AdvertInt: 100 * time.Millisecond, Addrs: []netip.Addr{vip1, vip2}})
	v3none := AppendAdvert(nil, src, MulticastGroup, &Advert{Version: 3, VRID: 7, Priority: 0, AdvertInt: time.Second})
	badCount := append([]byte(nil), v3...)
	badCount[23] = 200
	fixV3Checksum(badCount)
	badTTL := append([]byte(nil), v2...)
	badTTL[8] = 64
	fixIP(badTTL)
	badSum := append([]byte(nil), v2auth...)
	badSum[27] ^= 1
	return [][]byte{v2, v2auth, v3, v3none, v2[:len(v2)-1], v3[:27], badCount, badTTL, badSum}
}

func FuzzParseAdvert(f *testing.F) {
	for _, b := range seedAdverts() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a, back Advert
		if ParseAdvert(b, &a) != ReasonOK {
			return
		}
		s, d := netip.AddrFrom4([4]byte(b[12:])), netip.AddrFrom4([4]byte(b[16:]))
		out := AppendAdvert(nil, s, d, &a)
		if r := ParseAdvert(out, &back); r != ReasonOK {
			t.Fatalf("re-encoded advert %+v parses as %v", a, r)
		}
		if len(a.Addrs) == 0 {
			back.Addrs, a.Addrs = nil, nil
		}
		if !reflect.DeepEqual(a, back) {
			t.Fatalf("re-encoding changed the advert\n got %+v\nwant %+v", back, a)
		}
	})
}

// TestWriteFuzzSeeds checks that the checked-in corpus holds what the
// packet builders make now, and with -update-seeds rewrites it:
// go test -run TestWriteFuzzSeeds ./vrrp/ -update-seeds
func TestWriteFuzzSeeds(t *testing.T) {
	for _, b := range seedAdverts() {
		seedcorpus.Add(t, "FuzzParseAdvert", b)
	}
}
