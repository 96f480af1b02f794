package dataplane

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// XSKConfig sizes one AF_XDP socket. Each socket has its own UMEM: RxChunks
// for the fill and receive rings, TxChunks for transmit. A chunk holds one
// frame: XDP_PACKET_HEADROOM, the UMEM headroom (this package's Headroom
// and a virtio_net_hdr), then the frame, so 4 KiB chunks take frames of up
// to about 3.7 KB; larger ones are dropped by the kernel and counted in
// XDP_STATISTICS.
type XSKConfig struct {
	ChunkSize int // power of two, 2048 to the page size
	RxChunks  int // power of two: the fill and receive rings' size
	TxChunks  int // power of two: the transmit and completion rings' size
}

// DefaultXSK holds 2048 receive and 1024 transmit frames: 12 MiB a socket.
var DefaultXSK = XSKConfig{ChunkSize: 4096, RxChunks: 2048, TxChunks: 1024}

// xskHeadroom is the UMEM headroom: the kernel puts each received frame
// this far (and XDP_PACKET_HEADROOM) into its chunk, which leaves room
// for a virtio_net_hdr and Headroom in front, as the AF_PACKET ring does.
const xskHeadroom = Headroom + vnetHdrLen

// xdpRing is one of an AF_XDP socket's four single-producer,
// single-consumer rings, mapped from the kernel. Producer and consumer
// indexes run freely and wrap at 2^32; mask picks the slot.
type xdpRing struct {
	mem        []byte
	prod, cons *uint32
	desc       unsafe.Pointer
	mask       uint32
}

func mapXDPRing(fd int, off unix.XDPRingOffset, pgoff int64, n int, descSize uintptr) (*xdpRing, error) {
	m, err := unix.Mmap(fd, pgoff, int(off.Desc)+n*int(descSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	return &xdpRing{
		mem:  m,
		prod: (*uint32)(unsafe.Pointer(&m[off.Producer])),
		cons: (*uint32)(unsafe.Pointer(&m[off.Consumer])),
		desc: unsafe.Pointer(&m[off.Desc]),
		mask: uint32(n - 1),
	}, nil
}

// frame is slot i of a receive or transmit ring.
func (r *xdpRing) frame(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.desc, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// addr is slot i of a fill or completion ring.
func (r *xdpRing) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.desc, uintptr(i&r.mask)*8))
}

// xsk is one AF_XDP socket bound to one queue of one interface, the fast
// receive and transmit path beside a port's AF_PACKET socket: the XDP
// program (xdp_linux.go) redirects the frames uvs forwards into it, and
// everything else (ARP, the host's own traffic) still reaches the kernel
// and the AF_PACKET ring.
//
// Received frames are handed out in place, as the AF_PACKET ring's are;
// transmitted frames are copied into a transmit chunk, so a frame can leave
// by any interface's socket and its receive chunk goes back to the fill
// ring when the round ends.
type xsk struct {
	fd       int
	umem     []byte
	chunk    uint64
	zeroCopy bool

	rx, fill, tx, comp *xdpRing
	// Our ends of the rings: rxCons and fillProd are published in
	// releaseHeld, txProd in flush, compCons in reap.
	rxCons, rxSeen, fillProd, txProd, compCons uint32

	held    []uint64 // receive chunks handed out this round
	txFree  []uint64 // transmit chunks not in the kernel's hands
	txDirty bool     // descriptors written since the last kick

	statsMu sync.Mutex
	rxN     atomic.Uint64
	txN     atomic.Uint64
}

// openXSK creates an AF_XDP socket with its UMEM and binds it to queue of
// ifindex, zero-copy when the driver offers it and in copy mode otherwise.
// Without rx it only transmits, in copy mode: no receive ring, no receive
// chunks, and no XDP program is needed (nor attached), so the interface
// keeps its offloads and the AF_PACKET ring receives as before.
func openXSK(ifindex, queue int, cfg XSKConfig, rx bool) (*xsk, error) {
	if cfg.ChunkSize == 0 {
		cfg = DefaultXSK
	}
	pow2 := func(n int) bool { return n > 0 && n&(n-1) == 0 }
	if !pow2(cfg.ChunkSize) || !pow2(cfg.RxChunks) || !pow2(cfg.TxChunks) {
		return nil, fmt.Errorf("af_xdp: chunk size and counts must be powers of two: %+v", cfg)
	}
	// Zero-copy hands the queue's receive buffers to the UMEM: a
	// transmit-only socket, whose fill ring stays empty, would starve
	// the queue's receiving, so it takes copy mode only.
	modes := []uint16{unix.XDP_ZEROCOPY, unix.XDP_COPY}
	if !rx {
		modes = modes[1:]
	}
	var errs []error
	for _, mode := range modes {
		// A socket whose bind failed keeps its UMEM registration: each
		// mode gets a fresh one.
		x, err := openXSKMode(ifindex, queue, cfg, mode, rx)
		if err == nil {
			return x, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func openXSKMode(ifindex, queue int, cfg XSKConfig, mode uint16, rx bool) (*xsk, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("af_xdp socket: %w", err)
	}
	x := &xsk{fd: fd, chunk: uint64(cfg.ChunkSize), zeroCopy: mode == unix.XDP_ZEROCOPY}
	ok := false
	defer func() {
		if !ok {
			x.close()
		}
	}()
	rxChunks, fillSize := cfg.RxChunks, cfg.RxChunks
	if !rx {
		// The UMEM's owner must have a fill ring; it stays empty.
		rxChunks, fillSize = 0, 64
	}
	n := rxChunks + cfg.TxChunks
	x.umem, err = unix.Mmap(-1, 0, n*cfg.ChunkSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("af_xdp: mmap umem: %w", err)
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&x.umem[0]))),
		Len:      uint64(len(x.umem)),
		Size:     uint32(cfg.ChunkSize),
		Headroom: xskHeadroom,
	}
	if _, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); errno != 0 {
		return nil, fmt.Errorf("af_xdp: setsockopt XDP_UMEM_REG: %w", errno)
	}
	for _, o := range []struct {
		name, n int
		what    string
	}{
		{unix.XDP_UMEM_FILL_RING, fillSize, "XDP_UMEM_FILL_RING"},
		{unix.XDP_RX_RING, rxChunks, "XDP_RX_RING"},
		{unix.XDP_UMEM_COMPLETION_RING, cfg.TxChunks, "XDP_UMEM_COMPLETION_RING"},
		{unix.XDP_TX_RING, cfg.TxChunks, "XDP_TX_RING"},
	} {
		if o.n == 0 {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.name, o.n); err != nil {
			return nil, fmt.Errorf("af_xdp: setsockopt %s: %w", o.what, err)
		}
	}
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0); errno != 0 {
		return nil, fmt.Errorf("af_xdp: getsockopt XDP_MMAP_OFFSETS: %w", errno)
	}
	descSize := unsafe.Sizeof(unix.XDPDesc{})
	for _, r := range []struct {
		dst   **xdpRing
		off   unix.XDPRingOffset
		pgoff int64
		n     int
		size  uintptr
		what  string
	}{
		{&x.fill, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, fillSize, 8, "fill"},
		{&x.rx, off.Rx, unix.XDP_PGOFF_RX_RING, rxChunks, descSize, "rx"},
		{&x.comp, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, cfg.TxChunks, 8, "completion"},
		{&x.tx, off.Tx, unix.XDP_PGOFF_TX_RING, cfg.TxChunks, descSize, "tx"},
	} {
		if r.n == 0 {
			continue
		}
		if *r.dst, err = mapXDPRing(fd, r.off, r.pgoff, r.n, r.size); err != nil {
			return nil, fmt.Errorf("af_xdp: %s ring: %w", r.what, err)
		}
	}
	// The kernel may send a whole batch per kick rather than its default
	// 32 frames; older kernels lack the option, which costs only kicks.
	_ = unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, cfg.TxChunks)

	x.prime(rxChunks, cfg.TxChunks)
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: mode, Ifindex: uint32(ifindex), QueueID: uint32(queue)}); err != nil {
		return nil, fmt.Errorf("af_xdp: bind ifindex %d queue %d (flags %#x): %w", ifindex, queue, mode, err)
	}
	ok = true
	return x, nil
}

// modeName names the socket's mode for logs.
func (x *xsk) modeName() string {
	if x.zeroCopy {
		return "zero-copy"
	}
	return "copy"
}

// maxFrame is the longest frame a receive chunk holds.
func (x *xsk) maxFrame() int { return int(x.chunk) - unix.XDP_PACKET_HEADROOM - xskHeadroom }

// prime gives the first rxChunks chunks to the fill ring and keeps the
// txChunks after them for transmitting.
func (x *xsk) prime(rxChunks, txChunks int) {
	for i := 0; i < rxChunks; i++ {
		*x.fill.addr(x.fillProd) = uint64(i) * x.chunk
		x.fillProd++
	}
	atomic.StoreUint32(x.fill.prod, x.fillProd)
	x.txFree = make([]uint64, 0, txChunks)
	for i := rxChunks; i < rxChunks+txChunks; i++ {
		x.txFree = append(x.txFree, uint64(i)*x.chunk)
	}
	x.held = make([]uint64, 0, rxChunks)
}

// next hands out the next received frame with a zeroed virtio_net_hdr in
// front (XDP frames carry no offload metadata; a partial checksum they
// hide is finished here) and Headroom before that, or ok=false when the
// receive ring is empty. The chunk stays the worker's until releaseHeld.
func (x *xsk) next() (f rxFrame, ok bool) {
	if x.rx == nil {
		return f, false
	}
	if x.rxCons == x.rxSeen {
		x.rxSeen = atomic.LoadUint32(x.rx.prod)
		if x.rxCons == x.rxSeen {
			return f, false
		}
	}
	d := x.rx.frame(x.rxCons)
	x.rxCons++
	base := d.Addr &^ (x.chunk - 1)
	x.held = append(x.held, base)
	end := d.Addr + uint64(d.Len)
	if d.Addr-base < xskHeadroom || end > base+x.chunk || d.Options&unix.XDP_PKT_CONTD != 0 {
		// Not where the UMEM headroom puts frames, or a multi-buffer
		// frame this socket did not ask for: nothing to forward.
		f.truncated = true
		return f, true
	}
	finishHiddenPartial(x.umem[d.Addr:end])
	start := d.Addr - vnetHdrLen
	clear(x.umem[start:d.Addr])
	f.buf = x.umem[start : end : base+x.chunk]
	f.head = x.umem[start-Headroom : end : base+x.chunk]
	x.rxN.Add(1)
	return f, true
}

// releaseHeld gives the round's receive chunks back to the fill ring.
// The fill ring has a slot for every receive chunk, so there is always
// room.
func (x *xsk) releaseHeld() {
	if len(x.held) == 0 {
		return
	}
	atomic.StoreUint32(x.rx.cons, x.rxCons)
	for _, a := range x.held {
		*x.fill.addr(x.fillProd) = a
		x.fillProd++
	}
	atomic.StoreUint32(x.fill.prod, x.fillProd)
	x.held = x.held[:0]
}

// queue copies frame (an Ethernet frame, checksums complete, no larger
// than a chunk) into a transmit chunk and adds it to the transmit ring;
// false means no chunk was free.
func (x *xsk) queue(frame []byte) bool {
	if len(x.txFree) == 0 {
		x.reap()
		if len(x.txFree) == 0 {
			x.flush()
			if len(x.txFree) == 0 {
				return false
			}
		}
	}
	a := x.txFree[len(x.txFree)-1]
	x.txFree = x.txFree[:len(x.txFree)-1]
	copy(x.umem[a:a+x.chunk], frame)
	d := x.tx.frame(x.txProd)
	d.Addr, d.Len, d.Options = a, uint32(len(frame)), 0
	x.txProd++
	x.txDirty = true
	return true
}

// flush publishes the queued descriptors and kicks the kernel until it
// has taken them all (copy mode sends at most its budget per kick), then
// collects completed chunks. Descriptors an earlier flush left in the
// ring (a kick that failed) are kicked again, new ones or not.
func (x *xsk) flush() {
	if x.txDirty || atomic.LoadUint32(x.tx.cons) != x.txProd {
		atomic.StoreUint32(x.tx.prod, x.txProd)
		x.txDirty = false
		for tries := 0; tries < 8 && atomic.LoadUint32(x.tx.cons) != x.txProd; tries++ {
			_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
			if errno != 0 && errno != unix.EAGAIN && errno != unix.EBUSY && errno != unix.ENOBUFS && errno != unix.EINTR {
				// The ring keeps the rest for the next kick.
				break
			}
		}
	}
	x.reap()
}

// reap returns completed transmit chunks to the free list.
func (x *xsk) reap() {
	prod := atomic.LoadUint32(x.comp.prod)
	if prod == x.compCons {
		return
	}
	x.txN.Add(uint64(prod - x.compCons))
	for ; x.compCons != prod; x.compCons++ {
		x.txFree = append(x.txFree, *x.comp.addr(x.compCons)&^(x.chunk-1))
	}
	atomic.StoreUint32(x.comp.cons, x.compCons)
}

// stats reads the counters; safe from any goroutine.
func (x *xsk) stats() XSKStats {
	x.statsMu.Lock()
	defer x.statsMu.Unlock()
	s := XSKStats{Rx: x.rxN.Load(), Tx: x.txN.Load()}
	if x.fd < 0 {
		return s
	}
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0); errno == 0 {
		s.RxDropped, s.RxInvalid, s.TxInvalid = st.Rx_dropped, st.Rx_invalid_descs, st.Tx_invalid_descs
		s.RxRingFull, s.FillRingEmpty, s.TxRingEmpty = st.Rx_ring_full, st.Rx_fill_ring_empty_descs, st.Tx_ring_empty_descs
	}
	return s
}

func (x *xsk) close() {
	x.statsMu.Lock()
	defer x.statsMu.Unlock()
	for _, r := range []*xdpRing{x.rx, x.fill, x.tx, x.comp} {
		if r != nil {
			_ = unix.Munmap(r.mem)
		}
	}
	x.rx, x.fill, x.tx, x.comp = nil, nil, nil, nil
	if x.fd >= 0 {
		_ = unix.Close(x.fd)
		x.fd = -1
	}
	if x.umem != nil {
		_ = unix.Munmap(x.umem)
		x.umem = nil
	}
}
