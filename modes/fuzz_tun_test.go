package modes

import (
	"bytes"
	"testing"

	"github.com/uvs-project/uvs/header"
)

// The TUN-mode builders and the software segmenter take frames the
// director received: they must never panic, and what they build must
// decode.

// FuzzEncapIPIP: whatever the frame, the encapsulation is nil or a valid
// outer header, protocol 4, around the unchanged inner packet.
func FuzzEncapIPIP(f *testing.F) {
	for _, b := range fuzzFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, ip []byte) {
		const pre = header.VirtioNetHdrSize + header.EthernetMinimumSize
		head := make([]byte, 32+pre+len(ip))
		copy(head[32+pre:], ip)
		inner := bytes.Clone(ip)
		enc := EncapIPIP(head, 32, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 7)
		if enc == nil {
			return
		}
		outer := header.IPv4(enc[pre:])
		if !outer.IsValid(len(outer)) || outer.Protocol() != header.ProtoIPIP || outer.CalculateChecksum() != outer.Checksum() {
			t.Fatalf("bad outer header % x", enc[pre:pre+header.IPv4MinimumSize])
		}
		n := int(header.IPv4(inner).TotalLength())
		if !bytes.Equal(outer.Payload(), inner[:n]) {
			t.Fatal("the inner packet changed")
		}
	})
}

// FuzzFragNeeded: the ICMP error is nil or a valid IPv4/ICMP packet of
// type 3 code 4 with the given MTU, quoting the start of the offending
// packet.
func FuzzFragNeeded(f *testing.F) {
	for _, b := range fuzzFrames(f) {
		f.Add(withEthernet(b), uint16(1480))
	}
	f.Fuzz(func(t *testing.T, frame []byte, mtu uint16) {
		out := make([]byte, 256)
		icmp := FragNeeded(out, frame, [4]byte{198, 18, 0, 100}, mtu)
		if icmp == nil {
			return
		}
		ip := header.IPv4(icmp[header.EthernetMinimumSize:])
		if !ip.IsValid(len(ip)) || ip.Protocol() != header.ProtoICMP || ip.CalculateChecksum() != ip.Checksum() {
			t.Fatal("bad IPv4 header")
		}
		ic := header.ICMPv4(ip.Payload())
		if len(ic) < header.ICMPv4MinimumSize || ic.Type() != header.ICMPv4DestUnreachable || ic.Code() != header.ICMPv4FragNeeded ||
			ic.MTU() != mtu || header.Checksum(ic, 0) != 0xffff {
			t.Fatalf("bad ICMP message % x", ic[:min(len(ic), header.ICMPv4MinimumSize)])
		}
		// The offending packet's header and first 8 bytes of payload.
		in := header.IPv4(frame[header.EthernetMinimumSize:])
		if want := in[:min(int(in.TotalLength()), in.HeaderLength()+8)]; !bytes.Equal(ic.Payload(), want) {
			t.Fatalf("quote % x, want % x", ic.Payload(), want)
		}
	})
}

// FuzzSegmentTCP4: segments of any super-frame are valid IPv4/TCP
// frames, each at most mss of payload, that together carry the payload.
func FuzzSegmentTCP4(f *testing.F) {
	for _, b := range fuzzFrames(f) {
		f.Add(withEthernet(b), uint16(100))
	}
	f.Fuzz(func(t *testing.T, frame []byte, mss16 uint16) {
		mss := int(mss16%2000) + 1
		scratch := make([]byte, header.VirtioNetHdrSize+header.EthernetMinimumSize+0xffff)
		total := 0
		n := SegmentTCP4(frame, mss, scratch, func(vnet header.VirtioNetHdr, seg []byte) {
			ip := header.IPv4(seg[header.EthernetMinimumSize:])
			if !ip.IsValid(len(ip)) || ip.Protocol() != header.ProtoTCP || ip.CalculateChecksum() != ip.Checksum() {
				t.Fatal("bad segment IPv4 header")
			}
			tcp := header.TCP(ip.Payload())
			if !tcp.IsValid(len(tcp)) {
				t.Fatal("bad segment TCP header")
			}
			data := len(tcp) - tcp.DataOffset()
			if data > mss {
				t.Fatalf("segment of %d bytes, mss %d", data, mss)
			}
			total += data
		})
		if n == 0 {
			return
		}
		ip := header.IPv4(frame[header.EthernetMinimumSize:])
		tcp := header.TCP(ip.Payload())
		if want := int(ip.TotalLength()) - ip.HeaderLength() - tcp.DataOffset(); total != want {
			t.Fatalf("segments carry %d bytes, the frame %d", total, want)
		}
	})
}
