package header

import (
	"testing"

	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// TestWriteFuzzSeeds regenerates the checked-in corpora from the packet
// builders: go test -run TestWriteFuzzSeeds -update-seeds ./header/
func TestWriteFuzzSeeds(t *testing.T) {
	if !*seedcorpus.Update {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	for _, b := range seedFrames(t) {
		seedcorpus.Write(t, "FuzzIPv4", b, len(b))
		seedcorpus.Write(t, "FuzzIPv4", b[:len(b)-1], len(b)) // truncated
		p := IPv4(b).Payload()
		seedcorpus.Write(t, "FuzzTCP", p)
		seedcorpus.Write(t, "FuzzUDP", p)
		seedcorpus.Write(t, "FuzzICMPv4", p)
		seedcorpus.Write(t, "FuzzChecksum", b, uint16(0))
	}
	seedcorpus.Write(t, "FuzzChecksum", []byte{0xff}, uint16(0xffff))
	seedcorpus.Write(t, "FuzzEthernet", append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0}, seedFrames(t)[0]...))
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xa, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 192, 168, 7, 9}
	seedcorpus.Write(t, "FuzzARP", arp)
	seedcorpus.Write(t, "FuzzARP", arp[:27])
	seedcorpus.Write(t, "FuzzVirtioNetHdr", []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00})
	seedcorpus.Write(t, "FuzzVirtioNetHdr", []byte{0x03, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})
}
