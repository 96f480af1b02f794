package nfqueue

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
)

// FuzzParsePacket checks ParsePacket's invariants on any input: it does
// not panic, and a success has a header and a non-empty Payload lying
// inside the message's nlmsg_len. Seeds: testdata/fuzz/FuzzParsePacket
// (a valid message and malformed ones) and the unit tests' messages.
func FuzzParsePacket(f *testing.F) {
	f.Add(packetMsg(goodAttrs()...))
	f.Add(packetMsg(nl.NewRtAttr(attrPacketHdr, pktHdr(1, 0x0800, 0)), nl.NewRtAttr(attrPayload, []byte{0x45})))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var p Packet
		if err := ParsePacket(msg, &p); err != nil {
			return
		}
		if len(p.Payload) == 0 || cap(p.Payload) != len(p.Payload) {
			t.Fatalf("payload of %d bytes, capacity %d", len(p.Payload), cap(p.Payload))
		}
		start := uintptr(unsafe.Pointer(&msg[0]))
		at := uintptr(unsafe.Pointer(&p.Payload[0]))
		n := uintptr(binary.NativeEndian.Uint32(msg))
		if at < start+nlmsgHdrLen+nfgenLen+nlaHdrLen || at+uintptr(len(p.Payload)) > start+n || n > uintptr(len(msg)) {
			t.Fatalf("payload [%d, %d) outside the message's attributes (nlmsg_len %d, %d bytes)",
				at-start, at-start+uintptr(len(p.Payload)), n, len(msg))
		}
	})
}
