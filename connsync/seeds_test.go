package connsync

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// writeSeed writes one corpus entry in the "go test fuzz v1" format under
// testdata/fuzz/<target>/, named after its content.
func writeSeed(t *testing.T, target string, args ...any) {
	t.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			t.Fatalf("writeSeed: unsupported type %T", a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("seed-%x", sha256.Sum256([]byte(b.String())))[:21]
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFuzzSeeds regenerates the checked-in corpus from the encoder:
// go test ./connsync/ -run TestWriteFuzzSeeds -update-seeds
// It adds files and removes none: the seeds the version 1 encoder wrote
// (40-byte records) stay, as datagrams of an older peer that Decode must
// refuse by their version.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	for _, p := range seedDatagrams()[:3] {
		writeSeed(t, "FuzzDecode", p, false)
		writeSeed(t, "FuzzDecode", p, true)
	}
	conns := seedDatagrams()[0]
	writeSeed(t, "FuzzDecode", conns[:len(conns)-1], false) // truncated: bad length
	bad := bytes.Clone(conns)
	bad[hKind] = 9
	writeSeed(t, "FuzzDecode", bad, true) // unknown kind behind a good MAC
	bad = bytes.Clone(conns)
	bad[hCount] = 0
	writeSeed(t, "FuzzDecode", bad[:overhead], true) // conns without records
	writeSeed(t, "FuzzDecode", []byte("UVSC"), false)
	writeSeed(t, "FuzzDecode", v1Datagram(3), true) // an older peer's: bad version
}
