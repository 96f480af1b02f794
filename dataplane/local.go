package dataplane

import (
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/modes"
)

// A director that is also a real server of its own service (IPVS's
// LOCALNODE): a connection scheduled to this host goes into the host's
// stack through HostStack, a TUN device, as the kernel would deliver a
// DR packet to the VIP on its loopback; the reply leaves by the host's
// routes, straight to the client. A TUN device takes no offload
// metadata, so partial checksums are completed and super-frames cut to
// their segment size here.

func (w *worker) deliverLocal(buf []byte, ip header.IPv4) {
	if w.host == nil {
		w.drop(dropLocal)
		return
	}
	vnet := header.VirtioNetHdr(buf[:vnetHdrLen])
	frame := buf[vnetHdrLen:]
	if vnet.GSOType() != header.VirtioNetHdrGSONone {
		mss := int(vnet.GSOSize())
		if ip.Protocol() != header.ProtoTCP || mss == 0 {
			w.drop(dropBadL4)
			return
		}
		if w.segScratch == nil {
			w.segScratch = make([]byte, vnetHdrLen+header.EthernetMinimumSize+0xffff)
		}
		if modes.SegmentTCP4(frame, mss, w.segScratch, w.emitLocal) == 0 {
			w.drop(dropBadL4)
		}
		return
	}
	if vnet.Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
		completeChecksum(frame, int(vnet.CsumStart()), int(vnet.CsumOffset()))
	}
	w.toHost(frame)
}

// emitLocal is SegmentTCP4's callback for local delivery, bound once.
func (w *worker) emitLocal(vnet header.VirtioNetHdr, seg []byte) {
	completeChecksum(seg, int(vnet.CsumStart()), int(vnet.CsumOffset()))
	w.toHost(seg)
}

// toHost writes the IP packet of an Ethernet frame into the host stack.
func (w *worker) toHost(frame []byte) {
	ipb := frame[header.EthernetMinimumSize:]
	n := int(header.IPv4(ipb).TotalLength())
	if n > len(ipb) || n < header.IPv4MinimumSize {
		w.drop(dropBadIPv4)
		return
	}
	if err := w.host.Write(ipb[:n]); err != nil {
		w.drop(dropLocal)
		return
	}
	w.stats.localOut.add(1)
}
