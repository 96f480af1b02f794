package connsync

import (
	"bytes"
	"testing"

	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// TestWriteFuzzSeeds checks that the checked-in corpus holds every seed
// the encoder makes, and regenerates it with
// go test ./connsync/ -run TestWriteFuzzSeeds -update-seeds
// It adds files and removes none: the seeds the version 1 encoder wrote
// (40-byte records) stay, as datagrams of an older peer that Decode must
// refuse by their version.
func TestWriteFuzzSeeds(t *testing.T) {
	for _, p := range seedDatagrams()[:3] {
		seedcorpus.Add(t, "FuzzDecode", p, false)
		seedcorpus.Add(t, "FuzzDecode", p, true)
	}
	conns := seedDatagrams()[0]
	seedcorpus.Add(t, "FuzzDecode", conns[:len(conns)-1], false) // truncated: bad length
	bad := bytes.Clone(conns)
	bad[hKind] = 9
	seedcorpus.Add(t, "FuzzDecode", bad, true) // unknown kind behind a good MAC
	bad = bytes.Clone(conns)
	bad[hCount] = 0
	seedcorpus.Add(t, "FuzzDecode", bad[:overhead], true) // conns without records
	seedcorpus.Add(t, "FuzzDecode", []byte("UVSC"), false)
	seedcorpus.Add(t, "FuzzDecode", v1Datagram(3), true) // an older peer's: bad version
}
