package dataplane

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
)

// vnetHdrLen is the size of struct virtio_net_hdr that PACKET_VNET_HDR puts
// in front of every received frame and expects in front of every sent one.
const vnetHdrLen = 10

// Headroom is the space the ring leaves free in front of each frame's
// virtio_net_hdr (PACKET_RESERVE), for headers prepended in place.
const Headroom = 32

// RingConfig sizes one receive ring.
//
// A TPACKET_V2 ring is used rather than V3: V3 wakes the reader only when a
// block retires (1 ms at best, see ../shared/NOTES.md item 10), which puts a
// millisecond on every hop of a short connection. V2 wakes per frame. Every
// frame slot must hold a TSO/GRO super-frame (up to 64 KiB plus headers),
// and blocks are powers of two pages because the kernel allocates them so.
type RingConfig struct {
	FrameSize int // bytes per slot, multiple of 16
	BlockSize int // bytes per block, power-of-two pages, multiple of FrameSize is not required
	Blocks    int
}

// DefaultRing holds 15 super-frame slots per 1 MiB block.
var DefaultRing = RingConfig{FrameSize: 69632, BlockSize: 1 << 20, Blocks: 16}

// port is one AF_PACKET socket bound to one interface: a TPACKET_V2 receive
// ring and a sendmmsg transmit batch. A port is owned by one worker.
type port struct {
	fd      int
	ifindex int
	mac     [6]byte
	mtu     int

	ring           []byte
	frameSize      int
	blockSize      int
	framesPerBlock int
	frames         int
	head           int // next slot to look at

	// held are the slots handed to the worker and not yet given back;
	// they stay ours until the transmit batch that may point into them
	// has been flushed.
	held []int

	tx    []mmsghdr
	txIov []unix.Iovec
	txN   int

	// xsk, with the afxdp backend, is the AF_XDP socket on this
	// interface's queue: the frames the XDP program redirects arrive
	// there, and frames without offload metadata leave by it.
	xsk *xsk

	// overruns accumulates PACKET_STATISTICS drops (frames the kernel
	// could not put in a full ring); the kernel resets its count on read.
	overruns atomic.Uint64
	statsMu  sync.Mutex
}

// ringOverruns reads and accumulates the kernel's ring-full drops. Safe
// from any goroutine.
func (p *port) ringOverruns() uint64 {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.fd >= 0 {
		if st, err := unix.GetsockoptTpacketStats(p.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			p.overruns.Add(uint64(st.Drops))
		}
	}
	return p.overruns.Load()
}

// mmsghdr is struct mmsghdr; x/sys/unix has no sendmmsg wrapper.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// Fanout names a PACKET_FANOUT group: all ports of one interface across
// workers share an ID.
type Fanout struct {
	ID   uint16
	Mode uint16 // unix.PACKET_FANOUT_HASH, _CPU, _CBPF, ...
}

func openPort(ifindex int, mac [6]byte, rc RingConfig, batch int, fo *Fanout) (*port, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	p := &port{fd: fd, ifindex: ifindex, mac: mac}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	// Order matters (NOTES.md item 8): version, then vnet header, then the
	// ring; a vnet header set after the ring fails with EBUSY.
	opts := []struct {
		name, val int
		what      string
	}{
		{unix.PACKET_VERSION, unix.TPACKET_V2, "PACKET_VERSION"},
		{unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"},
		{unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
		{unix.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"},
		// Headroom in front of every frame, so an encapsulation (TUN
		// mode's outer IPv4 header) is prepended in place.
		{unix.PACKET_RESERVE, Headroom, "PACKET_RESERVE"},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.name, o.val); err != nil {
			return nil, fmt.Errorf("setsockopt %s: %w", o.what, err)
		}
	}
	if rc.FrameSize%unix.TPACKET_ALIGNMENT != 0 || rc.FrameSize > rc.BlockSize {
		return nil, fmt.Errorf("ring: frame size %d does not fit block size %d", rc.FrameSize, rc.BlockSize)
	}
	p.frameSize = rc.FrameSize
	p.blockSize = rc.BlockSize
	p.framesPerBlock = rc.BlockSize / rc.FrameSize
	p.frames = p.framesPerBlock * rc.Blocks
	req := unix.TpacketReq{
		Block_size: uint32(rc.BlockSize),
		Block_nr:   uint32(rc.Blocks),
		Frame_size: uint32(rc.FrameSize),
		Frame_nr:   uint32(p.frames),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("setsockopt PACKET_RX_RING: %w", err)
	}
	p.ring, err = unix.Mmap(fd, 0, rc.BlockSize*rc.Blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap rx ring: %w", err)
	}
	// A socket bound to an interface receives every frame until it joins
	// its fanout group (NOTES.md item 4), and joining needs a bound
	// socket: drop everything with a socket filter until the join is
	// done, then lift it.
	if fo != nil {
		if err := attachDropAll(fd); err != nil {
			return nil, err
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		return nil, fmt.Errorf("bind ifindex %d: %w", ifindex, err)
	}
	if fo != nil {
		v := int(fo.ID) | int(fo.Mode)<<16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, v); err != nil {
			return nil, fmt.Errorf("setsockopt PACKET_FANOUT: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
			return nil, fmt.Errorf("setsockopt SO_DETACH_FILTER: %w", err)
		}
	}
	p.held = make([]int, 0, p.frames)
	p.tx = make([]mmsghdr, batch)
	p.txIov = make([]unix.Iovec, batch)
	for i := range p.tx {
		p.tx[i].hdr.Iov = &p.txIov[i]
		p.tx[i].hdr.Iovlen = 1
	}
	ok = true
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (p *port) close() {
	if p.xsk != nil {
		p.xsk.close()
	}
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.ring != nil {
		_ = unix.Munmap(p.ring)
		p.ring = nil
	}
	if p.fd >= 0 {
		_ = unix.Close(p.fd)
		p.fd = -1
	}
}

func (p *port) slot(i int) int {
	return (i/p.framesPerBlock)*p.blockSize + (i%p.framesPerBlock)*p.frameSize
}

func (p *port) status(off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&p.ring[off]))
}

// rxFrame is one received frame in the ring: vnet is the virtio_net_hdr
// and frame the Ethernet frame right after it, contiguous in memory so
// that buf (both) can be transmitted as it is.
type rxFrame struct {
	buf       []byte // vnet header followed by the frame
	head      []byte // buf with Headroom bytes in front
	truncated bool
	vlan      bool
}

// next hands out the next filled slot, or ok=false when the ring is empty.
// The slot stays the worker's until releaseHeld.
func (p *port) next() (f rxFrame, ok bool) {
	off := p.slot(p.head)
	st := atomic.LoadUint32(p.status(off))
	if st&unix.TP_STATUS_USER == 0 {
		return f, false
	}
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&p.ring[off]))
	mac := int(h.Mac)
	start := off + mac - vnetHdrLen
	f.buf = p.ring[start : off+mac+int(h.Snaplen) : off+p.frameSize]
	f.head = p.ring[start-Headroom : off+mac+int(h.Snaplen) : off+p.frameSize]
	f.truncated = h.Snaplen < h.Len
	f.vlan = st&unix.TP_STATUS_VLAN_VALID != 0 && h.Vlan_tci != 0
	p.held = append(p.held, p.head)
	p.head++
	if p.head == p.frames {
		p.head = 0
	}
	return f, true
}

// releaseHeld gives every held slot back to the kernel.
func (p *port) releaseHeld() {
	if p.xsk != nil {
		p.xsk.releaseHeld()
	}
	for _, i := range p.held {
		atomic.StoreUint32(p.status(p.slot(i)), unix.TP_STATUS_KERNEL)
	}
	p.held = p.held[:0]
}

// queue adds buf (vnet header + frame) to the transmit batch, flushing
// first when the batch is full. buf must stay untouched until flush.
//
// With an AF_XDP socket, a frame that is not a GSO super-frame and fits a
// chunk leaves by its transmit ring: copied, its partial checksum (if any)
// finished in software first, and counted as sent. A super-frame needs
// the kernel to segment it and goes by sendmmsg, as does a jumbo frame. Switching from one path to the other
// flushes the first, so a flow's frames keep their order.
func (p *port) queue(buf []byte) (sent, dropped int) {
	if p.xsk != nil {
		vnet := header.VirtioNetHdr(buf[:vnetHdrLen])
		if vnet.GSOType() == header.VirtioNetHdrGSONone && uint64(len(buf)-vnetHdrLen) <= p.xsk.chunk {
			if p.txN > 0 {
				sent, dropped = p.flushPacket()
			}
			if vnet.Flags()&header.VirtioNetHdrFNeedsCsum != 0 {
				completeChecksum(buf[vnetHdrLen:], int(vnet.CsumStart()), int(vnet.CsumOffset()))
			}
			if p.xsk.queue(buf[vnetHdrLen:]) {
				return sent + 1, dropped
			}
			return sent, dropped + 1
		}
		if p.xsk.txDirty {
			p.xsk.flush()
		}
	}
	if p.txN == len(p.tx) {
		sent, dropped = p.flushPacket()
	}
	p.txIov[p.txN].Base = &buf[0]
	p.txIov[p.txN].SetLen(len(buf))
	p.txN++
	return sent, dropped
}

// flush sends both transmit batches: the AF_XDP ring's and sendmmsg's.
func (p *port) flush() (sent, dropped int) {
	if p.xsk != nil {
		p.xsk.flush()
	}
	return p.flushPacket()
}

// flushPacket sends the sendmmsg batch with as few calls as the kernel
// allows. Frames the kernel refuses (full queue, bad frame) are dropped
// and counted by the caller.
func (p *port) flushPacket() (sent, dropped int) {
	i := 0
	for i < p.txN {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.tx[i])), uintptr(p.txN-i), unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 {
			if errno == unix.EINTR {
				continue
			}
			// The message at i failed; skip it and go on with the rest.
			dropped++
			i++
			continue
		}
		sent += int(r)
		i += int(r)
	}
	runtime.KeepAlive(p.txIov)
	p.txN = 0
	return sent, dropped
}

// attachDropAll attaches a classic BPF filter that accepts nothing.
func attachDropAll(fd int) error {
	prog := []unix.SockFilter{{Code: 0x06, K: 0}} // ret #0
	fp := unix.SockFprog{Len: 1, Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return fmt.Errorf("setsockopt SO_ATTACH_FILTER: %w", err)
	}
	return nil
}
