// Package seedcorpus keeps the fuzz seed corpora that packages commit
// under testdata/fuzz in step with the encoders and packet builders each
// package's seed test builds its entries from; the packages share only
// the file format and the -update-seeds flag.
package seedcorpus

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is set by -update-seeds: only then do the seed tests rewrite
// the corpora, since the committed files are what fuzzing starts from.
var update = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// Add writes one corpus entry in the "go test fuzz v1" format under
// testdata/fuzz/<target>/, named after its content, when the test runs
// with -update-seeds. Otherwise it fails the test unless the committed
// corpus already holds the entry, so that a builder whose output changed
// cannot leave the corpus short of what it now makes.
func Add(tb testing.TB, target string, args ...any) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case int, uint16, uint32, bool:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			tb.Fatalf("seedcorpus: unsupported type %T", a)
		}
	}
	dir := filepath.Join("testdata", "fuzz", target)
	name := fmt.Sprintf("seed-%x", sha256.Sum256([]byte(b.String())))[:21]
	path := filepath.Join(dir, name)
	if !*update {
		if got, err := os.ReadFile(path); err != nil || string(got) != b.String() {
			tb.Errorf("%s: the committed corpus lacks this seed (%v); rerun the test with -update-seeds and commit the new file", path, err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}
