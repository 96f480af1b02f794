package connsync

import (
	"bytes"
	"testing"

	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// TestWriteFuzzSeeds regenerates the checked-in corpus from the encoder:
// go test ./connsync/ -run TestWriteFuzzSeeds -update-seeds
// It adds files and removes none: the seeds the version 1 encoder wrote
// (40-byte records) stay, as datagrams of an older peer that Decode must
// refuse by their version.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*seedcorpus.Update {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	for _, p := range seedDatagrams()[:3] {
		seedcorpus.Write(t, "FuzzDecode", p, false)
		seedcorpus.Write(t, "FuzzDecode", p, true)
	}
	conns := seedDatagrams()[0]
	seedcorpus.Write(t, "FuzzDecode", conns[:len(conns)-1], false) // truncated: bad length
	bad := bytes.Clone(conns)
	bad[hKind] = 9
	seedcorpus.Write(t, "FuzzDecode", bad, true) // unknown kind behind a good MAC
	bad = bytes.Clone(conns)
	bad[hCount] = 0
	seedcorpus.Write(t, "FuzzDecode", bad[:overhead], true) // conns without records
	seedcorpus.Write(t, "FuzzDecode", []byte("UVSC"), false)
	seedcorpus.Write(t, "FuzzDecode", v1Datagram(3), true) // an older peer's: bad version
}
