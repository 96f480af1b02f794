package modes

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/header"
)

func TestEncapIPIP(t *testing.T) {
	src := netip.MustParseAddrPort("198.18.0.1:40000")
	vip := netip.MustParseAddrPort("198.18.0.100:80")
	dip, rip := [4]byte{198, 19, 0, 1}, [4]byte{198, 19, 0, 11}
	for _, partial := range []bool{false, true} {
		frame := tcp4(t, src, vip, header.TCPFlagAck|header.TCPFlagPsh, payload(1000))
		if partial {
			makePartial(t, frame)
		}
		const off = 32
		head := make([]byte, off+header.VirtioNetHdrSize+len(frame)+16)
		vnet := header.VirtioNetHdr(head[off:])
		if partial {
			vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
			vnet.SetCsumStart(34)
			vnet.SetCsumOffset(header.TCPChecksumOffset)
		}
		copy(head[off+header.VirtioNetHdrSize:], frame)
		innerBefore := bytes.Clone(frame[14:])
		out := EncapIPIP(head, off, dip, rip, 7)
		if out == nil {
			t.Fatal("EncapIPIP refused")
		}
		ov := header.VirtioNetHdr(out)
		if partial && ov.CsumStart() != 54 {
			t.Errorf("csum_start %d, want 54", ov.CsumStart())
		}
		enc := out[header.VirtioNetHdrSize:]
		if partial {
			// Complete the inner checksum as the kernel would.
			inner := bytes.Clone(enc[34:])
			f := append(bytes.Clone(enc[:14]), inner...)
			complete(t, f)
			copy(enc[34:], f[14:])
			innerBefore = bytes.Clone(f[14:])
		}
		pkt := gopacket.NewPacket(enc, layers.LayerTypeEthernet, gopacket.Default)
		if el := pkt.ErrorLayer(); el != nil {
			t.Fatal(el.Error())
		}
		ips := pkt.Layers()
		outer, ok := ips[1].(*layers.IPv4)
		if !ok || outer.Protocol != layers.IPProtocolIPv4 {
			t.Fatalf("outer layer %v", ips[1])
		}
		if outer.SrcIP.String() != "198.19.0.1" || outer.DstIP.String() != "198.19.0.11" || outer.Id != 7 || outer.TTL != innerBefore[8] {
			t.Errorf("outer header % x", outer.Contents)
		}
		if outer.Flags&layers.IPv4DontFragment == 0 {
			t.Errorf("DF not copied from the inner header")
		}
		if s := refSum(enc[14:34], 0); s != 0xffff {
			t.Errorf("outer checksum invalid")
		}
		if int(outer.Length) != len(innerBefore)+20 {
			t.Errorf("outer length %d, inner %d", outer.Length, len(innerBefore))
		}
		if !bytes.Equal(enc[34:], innerBefore) {
			t.Errorf("inner packet changed")
		}
		checkFrame(t, append(bytes.Clone(enc[:14]), enc[34:]...))
	}
	if EncapIPIP(make([]byte, 100), 10, dip, rip, 0) != nil {
		t.Error("accepted a headroom under 20 bytes")
	}
}

func TestFragNeeded(t *testing.T) {
	frame := tcp4(t, netip.MustParseAddrPort("198.18.0.1:40000"), netip.MustParseAddrPort("198.18.0.100:80"), header.TCPFlagAck, payload(1400))
	out := FragNeeded(make([]byte, 1500), frame, [4]byte{198, 18, 0, 100}, 1480)
	if out == nil {
		t.Fatal("refused")
	}
	checkFrame(t, out, func(t *testing.T, d *decoded) {
		if d.icmp == nil || d.icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) {
			t.Fatalf("not frag-needed: %v", d.icmp)
		}
		if d.ip.SrcIP.String() != "198.18.0.100" || d.ip.DstIP.String() != "198.18.0.1" {
			t.Errorf("addresses %v -> %v", d.ip.SrcIP, d.ip.DstIP)
		}
		if mtu := header.ICMPv4(ipOf(out).Payload()).MTU(); mtu != 1480 {
			t.Errorf("MTU %d", mtu)
		}
		if !bytes.Equal(d.icmp.Payload, frame[14:14+28]) {
			t.Errorf("quote % x", d.icmp.Payload)
		}
	})
	if FragNeeded(make([]byte, 10), frame, [4]byte{}, 1480) != nil {
		t.Error("wrote past a small buffer")
	}
}

func TestDecapIPIP(t *testing.T) {
	frame := tcp4(t, netip.MustParseAddrPort("198.18.0.1:40000"), netip.MustParseAddrPort("198.18.0.100:80"), header.TCPFlagAck, payload(300))
	head := make([]byte, 32+header.VirtioNetHdrSize+len(frame))
	copy(head[32+header.VirtioNetHdrSize:], frame)
	enc := EncapIPIP(head, 32, [4]byte{198, 19, 0, 1}, [4]byte{198, 19, 0, 11}, 1)
	outer := enc[header.VirtioNetHdrSize+header.EthernetMinimumSize:]
	inner, ok := DecapIPIP(outer)
	if !ok || !bytes.Equal(inner, frame[14:]) {
		t.Fatalf("DecapIPIP: ok=%v, inner differs", ok)
	}
	if _, ok := DecapIPIP(frame[14:]); ok {
		t.Error("accepted a plain TCP packet")
	}
	if _, ok := DecapIPIP(outer[:30]); ok {
		t.Error("accepted a truncated tunnel packet")
	}
}

// FuzzDecapIPIP: never panics, and what it returns is a valid IPv4
// packet inside the input.
func FuzzDecapIPIP(f *testing.F) {
	frame := tcp4(f, netip.MustParseAddrPort("198.18.0.1:40000"), netip.MustParseAddrPort("198.18.0.100:80"), header.TCPFlagAck, payload(40))
	head := make([]byte, 32+header.VirtioNetHdrSize+len(frame))
	copy(head[32+header.VirtioNetHdrSize:], frame)
	enc := EncapIPIP(head, 32, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 1)
	f.Add(bytes.Clone(enc[header.VirtioNetHdrSize+header.EthernetMinimumSize:]))
	f.Add(frame[14:])
	f.Fuzz(func(t *testing.T, b []byte) {
		inner, ok := DecapIPIP(b)
		if !ok {
			return
		}
		if !header.IPv4(inner).IsValid(len(inner)) || len(inner) > len(b)-header.IPv4MinimumSize {
			t.Fatalf("returned an invalid inner packet")
		}
	})
}
