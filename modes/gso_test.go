package modes

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/uvs-project/uvs/header"
)

func TestSegmentTCP4(t *testing.T) {
	src := netip.MustParseAddrPort("198.18.0.1:40000")
	dst := netip.MustParseAddrPort("198.19.0.11:80")
	for _, tc := range []struct {
		name      string
		payload   int
		mss       int
		flags     uint8
		wantSegs  int
		wantFirst uint8 // flags of the first segment
		wantLast  uint8
	}{
		{"exact multiple", 1448 * 4, 1448, header.TCPFlagAck | header.TCPFlagPsh, 4, header.TCPFlagAck, header.TCPFlagAck | header.TCPFlagPsh},
		{"short tail and FIN", 60000, 1448, header.TCPFlagAck | header.TCPFlagFin | header.TCPFlagPsh, 42,
			header.TCPFlagAck, header.TCPFlagAck | header.TCPFlagFin | header.TCPFlagPsh},
		{"one segment", 100, 1448, header.TCPFlagAck, 1, header.TCPFlagAck, header.TCPFlagAck},
		{"no payload", 0, 1448, header.TCPFlagAck, 1, header.TCPFlagAck, header.TCPFlagAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := tcp4(t, src, dst, tc.flags, payload(tc.payload))
			makePartial(t, frame)
			orig := ipOf(frame)
			origTCP := header.TCP(orig.Payload())
			scratch := make([]byte, 64*1024)
			var got bytes.Buffer
			var segs int
			var nextSeq = origTCP.Seq()
			n := SegmentTCP4(frame, tc.mss, scratch, func(vnet header.VirtioNetHdr, seg []byte) {
				if vnet.Flags() != header.VirtioNetHdrFNeedsCsum || vnet.CsumStart() != 34 || vnet.CsumOffset() != header.TCPChecksumOffset {
					t.Fatalf("vnet header %x", []byte(vnet))
				}
				seg = bytes.Clone(seg)
				complete(t, seg)
				checkFrame(t, seg)
				ip := ipOf(seg)
				tcp := header.TCP(ip.Payload())
				if tcp.Seq() != nextSeq {
					t.Fatalf("segment %d seq %d, want %d", segs, tcp.Seq(), nextSeq)
				}
				data := tcp[tcp.DataOffset():]
				if len(data) > tc.mss {
					t.Fatalf("segment %d carries %d bytes > mss %d", segs, len(data), tc.mss)
				}
				if ip.ID() != orig.ID()+uint16(segs) {
					t.Fatalf("segment %d IP ID %d", segs, ip.ID())
				}
				nextSeq += uint32(len(data))
				got.Write(data)
				if segs == 0 && tcp.Flags() != tc.wantFirst {
					t.Errorf("first segment flags %#x, want %#x", tcp.Flags(), tc.wantFirst)
				}
				if segs == tc.wantSegs-1 && tcp.Flags() != tc.wantLast {
					t.Errorf("last segment flags %#x, want %#x", tcp.Flags(), tc.wantLast)
				}
				segs++
			})
			if n != tc.wantSegs || segs != n {
				t.Fatalf("%d segments (%d emitted), want %d", n, segs, tc.wantSegs)
			}
			if !bytes.Equal(got.Bytes(), origTCP[origTCP.DataOffset():]) {
				t.Fatalf("reassembled payload differs")
			}
		})
	}
}

func TestSegmentTCP4Refuses(t *testing.T) {
	udp := udp4(t, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("5.6.7.8:9"))
	if n := SegmentTCP4(udp, 1448, make([]byte, 65536), func(header.VirtioNetHdr, []byte) { t.Fatal("emitted") }); n != 0 {
		t.Fatalf("UDP: %d segments", n)
	}
	tcp := tcp4(t, netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("5.6.7.8:9"), header.TCPFlagAck, payload(3000))
	if n := SegmentTCP4(tcp, 1448, make([]byte, 100), func(header.VirtioNetHdr, []byte) { t.Fatal("emitted") }); n != 0 {
		t.Fatalf("small scratch: %d segments", n)
	}
	if n := SegmentTCP4(tcp[:20], 1448, make([]byte, 65536), func(header.VirtioNetHdr, []byte) { t.Fatal("emitted") }); n != 0 {
		t.Fatalf("truncated: %d segments", n)
	}
}
