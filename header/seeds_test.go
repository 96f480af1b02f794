package header

import (
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
		case int, uint16, uint32, bool:
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
// builders: go test -run TestWriteFuzzSeeds -update-seeds ./header/
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	for _, b := range seedFrames(t) {
		writeSeed(t, "FuzzIPv4", b, len(b))
		writeSeed(t, "FuzzIPv4", b[:len(b)-1], len(b)) // truncated
		p := IPv4(b).Payload()
		writeSeed(t, "FuzzTCP", p)
		writeSeed(t, "FuzzUDP", p)
		writeSeed(t, "FuzzICMPv4", p)
		writeSeed(t, "FuzzChecksum", b, uint16(0))
	}
	writeSeed(t, "FuzzChecksum", []byte{0xff}, uint16(0xffff))
	writeSeed(t, "FuzzEthernet", append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0}, seedFrames(t)[0]...))
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xa, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 192, 168, 7, 9}
	writeSeed(t, "FuzzARP", arp)
	writeSeed(t, "FuzzARP", arp[:27])
	writeSeed(t, "FuzzVirtioNetHdr", []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00})
	writeSeed(t, "FuzzVirtioNetHdr", []byte{0x03, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})
}
