package bench

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The generator's frames must match what an independent encoder
// (gopacket, checksums computed) produces for the same packet.
func TestUDPFramesMatchGopacket(t *testing.T) {
	srcMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	src := netip.MustParseAddr("198.18.0.1")
	dsts := []netip.Addr{netip.MustParseAddr("198.19.0.11"), netip.MustParseAddr("198.19.0.12")}
	frames := UDPFrames(srcMAC, dstMAC, src, dsts, 9, udpFlows)
	if len(frames) != udpFlows {
		t.Fatalf("got %d frames, want %d", len(frames), udpFlows)
	}
	for i, f := range frames {
		if len(f) != udpFrameLen {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(f), udpFrameLen)
		}
		payload := make([]byte, udpPayload)
		for k := range payload {
			payload[k] = byte(udpLen + k)
		}
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, IHL: 5, Id: uint16(i), TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dsts[i%2].AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(udpBasePort + i), DstPort: 9}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f, buf.Bytes()) {
			t.Fatalf("frame %d:\n got % x\nwant % x", i, f, buf.Bytes())
		}
	}
}
