// Package seedcorpus writes the fuzz seed corpora that packages commit
// under testdata/fuzz, so that each package's seed test builds its
// entries from its own encoders and packet builders and shares only the
// file format.
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

// Update is set by -update-seeds: the seed tests rewrite their corpora
// only when asked, since the committed files are what fuzzing starts from.
var Update = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// Write writes one corpus entry in the "go test fuzz v1" format under
// testdata/fuzz/<target>/, named after its content, so that writing the
// same seed again changes nothing.
func Write(tb testing.TB, target string, args ...any) {
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	name := fmt.Sprintf("seed-%x", sha256.Sum256([]byte(b.String())))[:21]
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}
