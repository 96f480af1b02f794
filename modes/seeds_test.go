package modes

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/header"
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
		case uint16, uint32, bool:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
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

// TestWriteFuzzSeeds regenerates the checked-in corpora from the packet
// builders: go test -run TestWriteFuzzSeeds ./modes/ -update-seeds
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	to, port := uint32(0x0a00000b), uint16(8080)
	for i, b := range fuzzFrames(t) {
		partial := i%2 == 1
		for _, target := range []string{"FuzzRewriteDst", "FuzzRewriteSrc", "FuzzNATICMPOut", "FuzzNATICMPIn"} {
			writeSeed(t, target, b, to, port, partial)
		}
		writeSeed(t, "FuzzICMPErrorQuote", b)
		eth := make([]byte, header.EthernetMinimumSize, header.EthernetMinimumSize+len(b))
		header.Ethernet(eth).SetType(header.EtherTypeIPv4)
		writeSeed(t, "FuzzEchoReply", append(eth, b...))
		writeSeed(t, "FuzzEncapIPIP", b)
		writeSeed(t, "FuzzFragNeeded", append(eth, b...), uint16(1480))
		writeSeed(t, "FuzzSegmentTCP4", append(eth, b...), uint16(100+i))
		head := make([]byte, 32+header.VirtioNetHdrSize+header.EthernetMinimumSize+len(b))
		copy(head[32+header.VirtioNetHdrSize+header.EthernetMinimumSize:], b)
		if enc := EncapIPIP(head, 32, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1); enc != nil {
			writeSeed(t, "FuzzDecapIPIP", enc[header.VirtioNetHdrSize+header.EthernetMinimumSize:])
		}
		writeSeed(t, "FuzzDecapIPIP", b)
	}
}
