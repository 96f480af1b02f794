package modes

import (
	"testing"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// TestWriteFuzzSeeds checks that the checked-in corpora hold every seed
// the packet builders make, and regenerates them with
// go test -run TestWriteFuzzSeeds ./modes/ -update-seeds
func TestWriteFuzzSeeds(t *testing.T) {
	to, port := uint32(0x0a00000b), uint16(8080)
	for i, b := range fuzzFrames(t) {
		partial := i%2 == 1
		for _, target := range []string{"FuzzRewriteDst", "FuzzRewriteSrc", "FuzzNATICMPOut", "FuzzNATICMPIn"} {
			seedcorpus.Add(t, target, b, to, port, partial)
		}
		seedcorpus.Add(t, "FuzzICMPErrorQuote", b)
		seedcorpus.Add(t, "FuzzEchoReply", withEthernet(b))
		seedcorpus.Add(t, "FuzzEncapIPIP", b)
		seedcorpus.Add(t, "FuzzFragNeeded", withEthernet(b), uint16(1480))
		seedcorpus.Add(t, "FuzzSegmentTCP4", withEthernet(b), uint16(100+i))
		head := make([]byte, 32+header.VirtioNetHdrSize+header.EthernetMinimumSize+len(b))
		copy(head[32+header.VirtioNetHdrSize+header.EthernetMinimumSize:], b)
		if enc := EncapIPIP(head, 32, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1); enc != nil {
			seedcorpus.Add(t, "FuzzDecapIPIP", enc[header.VirtioNetHdrSize+header.EthernetMinimumSize:])
		}
		seedcorpus.Add(t, "FuzzDecapIPIP", b)
	}
}
