package modes

import (
	"github.com/uvs-project/uvs/header"
)

// Software segmentation of TCP super-frames, for the encapsulating mode
// (TUN): virtio_net_hdr can describe TCP GSO but not TCP inside IPIP, so
// a super-frame that must be encapsulated is cut into MSS-sized segments
// here first. Each segment keeps a partial checksum (NEEDS_CSUM at its
// TCP header) for the kernel to finish, as the super-frame had.

// SegmentTCP4 cuts the TCP/IPv4 super-frame in frame (Ethernet header
// first) into segments of at most mss payload bytes, calling emit with
// each segment built in scratch (which must hold the headers plus mss)
// and the vnet header to send it with. It returns the number of segments,
// or 0 when frame is not a well-formed TCP/IPv4 frame. The TCP checksum
// of every segment is left partial: its field holds the pseudo-header sum
// and vnet asks the kernel to complete it.
func SegmentTCP4(frame []byte, mss int, scratch []byte, emit func(vnet header.VirtioNetHdr, seg []byte)) int {
	if len(frame) < header.EthernetMinimumSize+header.IPv4MinimumSize || mss <= 0 {
		return 0
	}
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	if !ip.IsValid(len(ip)) || ip.Protocol() != header.ProtoTCP {
		return 0
	}
	ihl := ip.HeaderLength()
	tcp := header.TCP(ip[ihl:])
	if !tcp.IsValid(len(tcp)) {
		return 0
	}
	hdrLen := header.EthernetMinimumSize + ihl + tcp.DataOffset()
	payload := frame[hdrLen : header.EthernetMinimumSize+int(ip.TotalLength())]
	if len(scratch) < header.VirtioNetHdrSize+hdrLen+mss {
		return 0
	}
	flags := tcp.Flags()
	seq := tcp.Seq()
	id := ip.ID()
	n := 0
	for off := 0; off < len(payload) || (n == 0 && len(payload) == 0); off += mss {
		end := min(off+mss, len(payload))
		vnet := header.VirtioNetHdr(scratch[:header.VirtioNetHdrSize])
		seg := scratch[header.VirtioNetHdrSize : header.VirtioNetHdrSize+hdrLen+end-off]
		copy(seg, frame[:hdrLen])
		copy(seg[hdrLen:], payload[off:end])
		sip := header.IPv4(seg[header.EthernetMinimumSize:])
		sip.SetTotalLength(uint16(ihl + tcp.DataOffset() + end - off))
		sip.SetID(id + uint16(n))
		sip.SetChecksum(sip.CalculateChecksum())
		st := header.TCP(sip[ihl:])
		setSeq(st, seq+uint32(off))
		f := flags
		if off > 0 {
			f &^= header.TCPFlagCwr
		}
		if end < len(payload) {
			f &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		st[13] = f
		l4len := uint16(tcp.DataOffset() + end - off)
		st.SetChecksum(header.PseudoHeaderChecksum(header.ProtoTCP, sip.Src(), sip.Dst(), l4len))
		clear(vnet)
		vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
		vnet.SetCsumStart(uint16(header.EthernetMinimumSize + ihl))
		vnet.SetCsumOffset(header.TCPChecksumOffset)
		emit(vnet, seg)
		n++
		if len(payload) == 0 {
			break
		}
	}
	return n
}

func setSeq(t header.TCP, seq uint32) {
	t[4], t[5], t[6], t[7] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
}
