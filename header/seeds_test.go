package header

import (
	"testing"

	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// TestWriteFuzzSeeds checks that the checked-in corpora hold every seed
// the packet builders make, and regenerates them with
// go test -run TestWriteFuzzSeeds -update-seeds ./header/
func TestWriteFuzzSeeds(t *testing.T) {
	for _, b := range seedFrames(t) {
		seedcorpus.Add(t, "FuzzIPv4", b, len(b))
		seedcorpus.Add(t, "FuzzIPv4", b[:len(b)-1], len(b)) // truncated
		p := IPv4(b).Payload()
		seedcorpus.Add(t, "FuzzTCP", p)
		seedcorpus.Add(t, "FuzzUDP", p)
		seedcorpus.Add(t, "FuzzICMPv4", p)
		seedcorpus.Add(t, "FuzzChecksum", b, uint16(0))
	}
	seedcorpus.Add(t, "FuzzChecksum", []byte{0xff}, uint16(0xffff))
	seedcorpus.Add(t, "FuzzEthernet", append([]byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0}, seedFrames(t)[0]...))
	arp := []byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0xa, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 192, 168, 7, 9}
	seedcorpus.Add(t, "FuzzARP", arp)
	seedcorpus.Add(t, "FuzzARP", arp[:27])
	seedcorpus.Add(t, "FuzzVirtioNetHdr", []byte{0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00})
	seedcorpus.Add(t, "FuzzVirtioNetHdr", []byte{0x03, 0x80, 0, 0, 0, 0, 0, 0, 0, 0})
}
