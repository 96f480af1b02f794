package header

import "encoding/binary"

// struct virtio_net_hdr (virtio 1.x spec, 5.1.6; Linux
// include/uapi/linux/virtio_net.h), without num_buffers. Packet sockets
// with PACKET_VNET_HDR use the legacy layout in host byte order.
//
//	 0               1               2               3
//	+---------------+---------------+-------------------------------+
//	|     flags     |   gso_type    |            hdr_len            |
//	+---------------+---------------+-------------------------------+
//	|           gso_size            |          csum_start           |
//	+-------------------------------+-------------------------------+
//	|          csum_offset          |
//	+-------------------------------+
const (
	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLen     = 2
	vnetGSOSize    = 4
	vnetCsumStart  = 6
	vnetCsumOffset = 8
)

// VirtioNetHdrSize is the size of struct virtio_net_hdr.
const VirtioNetHdrSize = 10

// VirtioNetHdr flags.
const (
	// VirtioNetHdrFNeedsCsum: the L4 checksum is partial. The field at
	// CsumStart+CsumOffset holds the uncomplemented pseudo-header sum; the
	// kernel (or NIC) sums the bytes from CsumStart and stores the
	// complement there.
	VirtioNetHdrFNeedsCsum = 1
	// VirtioNetHdrFDataValid: the checksums were verified already.
	VirtioNetHdrFDataValid = 2
)

// VirtioNetHdr GSO types.
const (
	VirtioNetHdrGSONone  = 0
	VirtioNetHdrGSOTCPv4 = 1
	VirtioNetHdrGSOUDP   = 3
	VirtioNetHdrGSOTCPv6 = 4
	VirtioNetHdrGSOECN   = 0x80
)

// VirtioNetHdr is a view over a virtio_net_hdr.
type VirtioNetHdr []byte

// IsValid reports whether h holds a whole header.
func (h VirtioNetHdr) IsValid() bool { return len(h) >= VirtioNetHdrSize }

// Flags returns the flags (VirtioNetHdrFNeedsCsum, VirtioNetHdrFDataValid).
func (h VirtioNetHdr) Flags() uint8 { return h[vnetFlags] }

// GSOType returns the GSO type, ECN bit included.
func (h VirtioNetHdr) GSOType() uint8 { return h[vnetGSOType] }

// HdrLen returns the length of the headers to replicate in each segment.
func (h VirtioNetHdr) HdrLen() uint16 { return binary.NativeEndian.Uint16(h[vnetHdrLen:]) }

// GSOSize returns the segment payload size.
func (h VirtioNetHdr) GSOSize() uint16 { return binary.NativeEndian.Uint16(h[vnetGSOSize:]) }

// CsumStart returns the offset, from the start of the frame, where
// checksumming starts.
func (h VirtioNetHdr) CsumStart() uint16 { return binary.NativeEndian.Uint16(h[vnetCsumStart:]) }

// CsumOffset returns the checksum field's offset from CsumStart.
func (h VirtioNetHdr) CsumOffset() uint16 { return binary.NativeEndian.Uint16(h[vnetCsumOffset:]) }

// SetFlags sets the flags.
func (h VirtioNetHdr) SetFlags(f uint8) { h[vnetFlags] = f }

// SetGSOType sets the GSO type.
func (h VirtioNetHdr) SetGSOType(t uint8) { h[vnetGSOType] = t }

// SetHdrLen sets the header length.
func (h VirtioNetHdr) SetHdrLen(n uint16) { binary.NativeEndian.PutUint16(h[vnetHdrLen:], n) }

// SetGSOSize sets the segment payload size.
func (h VirtioNetHdr) SetGSOSize(n uint16) { binary.NativeEndian.PutUint16(h[vnetGSOSize:], n) }

// SetCsumStart sets the checksum start offset.
func (h VirtioNetHdr) SetCsumStart(n uint16) { binary.NativeEndian.PutUint16(h[vnetCsumStart:], n) }

// SetCsumOffset sets the checksum field offset.
func (h VirtioNetHdr) SetCsumOffset(n uint16) { binary.NativeEndian.PutUint16(h[vnetCsumOffset:], n) }
