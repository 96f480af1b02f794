package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/internal/seedcorpus"
)

// partialOf turns a complete [vnet | frame] into the Ethernet frame a
// CHECKSUM_PARTIAL sender hands its device: the L4 field holds the
// pseudo-header sum.
func partialOf(tb testing.TB, buf []byte) []byte {
	tb.Helper()
	f := bytes.Clone(buf[vnetHdrLen:])
	ip := header.IPv4(f[header.EthernetMinimumSize:])
	l4 := ip.Payload()
	off := header.TCPChecksumOffset
	if ip.Protocol() == header.ProtoUDP {
		off = header.UDPChecksumOffset
	}
	binary.BigEndian.PutUint16(l4[off:], header.PseudoHeaderChecksum(ip.Protocol(), ip.Src(), ip.Dst(), uint16(len(l4))))
	return f
}

// l4Valid checks a frame's TCP or UDP checksum with gopacket, an
// independent decoder.
func l4Valid(tb testing.TB, frame []byte) bool {
	tb.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		tb.Fatalf("no IPv4 layer in %x", frame)
	}
	var got uint16
	l4 := ip.Payload
	switch ip.Protocol {
	case layers.IPProtocolTCP:
		got = binary.BigEndian.Uint16(l4[16:])
	case layers.IPProtocolUDP:
		got = binary.BigEndian.Uint16(l4[6:])
	}
	// Recompute with the field zeroed, as a receiver would compare.
	c := bytes.Clone(l4)
	if ip.Protocol == layers.IPProtocolTCP {
		c[16], c[17] = 0, 0
	} else {
		c[6], c[7] = 0, 0
	}
	var s uint32
	for _, b := range [][]byte{ip.SrcIP.To4(), ip.DstIP.To4()} {
		s += uint32(b[0])<<8 | uint32(b[1])
		s += uint32(b[2])<<8 | uint32(b[3])
	}
	s += uint32(ip.Protocol) + uint32(len(c))
	for i := 0; i+1 < len(c); i += 2 {
		s += uint32(c[i])<<8 | uint32(c[i+1])
	}
	if len(c)%2 == 1 {
		s += uint32(c[len(c)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	want := ^uint16(s)
	if want == 0 && ip.Protocol == layers.IPProtocolUDP {
		want = 0xffff
	}
	return got == want
}

func TestFinishHiddenPartial(t *testing.T) {
	tcp := tcpFrame(t, cip, vip, d0MAC, false, true, 1000)
	udp := udpFrame(t, cip, netip.AddrPortFrom(vip.Addr(), 53), d0MAC, 37)
	for _, c := range []struct {
		name   string
		frame  []byte
		finish bool
	}{
		{"partial TCP", partialOf(t, tcp), true},
		{"partial UDP, odd length", partialOf(t, udp), true},
		{"complete TCP", tcp[vnetHdrLen:], false},
		{"complete UDP", udp[vnetHdrLen:], false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := bytes.Clone(c.frame)
			if got := finishHiddenPartial(f); got != c.finish {
				t.Fatalf("finishHiddenPartial = %v, want %v", got, c.finish)
			}
			if !c.finish && !bytes.Equal(f, c.frame) {
				t.Fatal("a complete frame changed")
			}
			if !l4Valid(t, f) {
				t.Fatal("checksum not valid after")
			}
		})
	}
	t.Run("a corrupt frame stays corrupt", func(t *testing.T) {
		f := bytes.Clone(tcp[vnetHdrLen:])
		f[len(f)-1] ^= 0xff
		if finishHiddenPartial(f) {
			t.Fatal("finished a frame whose field is not the pseudo-header sum")
		}
	})
}

func TestFinishHiddenPartialSeeds(t *testing.T) {
	for _, b := range [][]byte{
		partialOf(t, tcpFrame(t, cip, vip, d0MAC, false, true, 100)),
		partialOf(t, udpFrame(t, cip, netip.AddrPortFrom(vip.Addr(), 53), d0MAC, 9)),
		tcpFrame(t, cip, vip, d0MAC, true, false, 0)[vnetHdrLen:],
	} {
		seedcorpus.Add(t, "FuzzFinishHiddenPartial", b)
	}
}

// FuzzFinishHiddenPartial: whatever the frame, a change is only ever a
// finished checksum, which must then be valid.
func FuzzFinishHiddenPartial(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		frame := bytes.Clone(b)
		if !finishHiddenPartial(frame) {
			if !bytes.Equal(frame, b) {
				t.Fatal("changed a frame it did not finish")
			}
			return
		}
		if !l4Valid(t, frame) {
			t.Fatalf("finished checksum not valid: %x", frame)
		}
		if finishHiddenPartial(frame) {
			t.Fatal("finished the same frame twice")
		}
	})
}
