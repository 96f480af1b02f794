package dataplane

import (
	"bytes"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
)

// memRing is an xdpRing over ordinary memory, for playing the kernel's
// side of a socket's rings: producer at 0, consumer at 8,
// descriptors from 64.
func memRing(n int, descSize uintptr) *xdpRing {
	mem := make([]byte, 64+uintptr(n)*descSize)
	return &xdpRing{
		mem:  mem,
		prod: (*uint32)(unsafe.Pointer(&mem[0])),
		cons: (*uint32)(unsafe.Pointer(&mem[8])),
		desc: unsafe.Pointer(&mem[64]),
		mask: uint32(n - 1),
	}
}

// fakeXSK is a socket without a kernel: fd -1 (every kick fails at once)
// and rings in ordinary memory, primed as openXSK primes them.
func fakeXSK(rxChunks, txChunks int) *xsk {
	const chunk = 2048
	desc := unsafe.Sizeof(unix.XDPDesc{})
	x := &xsk{
		fd:    -1,
		chunk: chunk,
		umem:  make([]byte, (rxChunks+txChunks)*chunk),
		rx:    memRing(rxChunks, desc),
		fill:  memRing(rxChunks, 8),
		tx:    memRing(txChunks, desc),
		comp:  memRing(txChunks, 8),
	}
	x.prime(rxChunks, txChunks)
	return x
}

// deliver plays the kernel receiving frame into the chunk at base, off
// bytes in.
func deliver(x *xsk, base, off uint64, frame []byte, options uint32) {
	copy(x.umem[base+off:], frame)
	p := atomic.LoadUint32(x.rx.prod)
	d := x.rx.frame(p)
	d.Addr, d.Len, d.Options = base+off, uint32(len(frame)), options
	atomic.StoreUint32(x.rx.prod, p+1)
}

func TestXSKReceive(t *testing.T) {
	x := fakeXSK(4, 4)
	if got := atomic.LoadUint32(x.fill.prod); got != 4 {
		t.Fatalf("fill ring primed with %d chunks, want 4", got)
	}
	good := tcpFrame(t, cip, vip, d0MAC, false, true, 100)[vnetHdrLen:]
	partial := partialOf(t, tcpFrame(t, cip, vip, d0MAC, false, true, 333))
	// Where the kernel puts frames: XDP_PACKET_HEADROOM past the UMEM
	// headroom.
	off := uint64(unix.XDP_PACKET_HEADROOM + xskHeadroom)
	deliver(x, 0, off, good, 0)
	deliver(x, 2048, off, partial, 0)
	deliver(x, 4096, 4, good, 0)                    // no room for the headroom
	deliver(x, 6144, off, good, unix.XDP_PKT_CONTD) // a multi-buffer frame's first part

	f, ok := x.next()
	if !ok || f.truncated {
		t.Fatalf("first frame: ok %v truncated %v", ok, f.truncated)
	}
	if !bytes.Equal(f.buf[vnetHdrLen:], good) || !bytes.Equal(f.buf[:vnetHdrLen], make([]byte, vnetHdrLen)) {
		t.Fatal("first frame: not the frame behind a zeroed virtio_net_hdr")
	}
	if len(f.head) != Headroom+len(f.buf) || &f.head[Headroom] != &f.buf[0] {
		t.Fatal("first frame: head is not the frame with Headroom in front")
	}
	if cap(f.buf) != int(2048-off+vnetHdrLen) {
		t.Fatalf("first frame: capacity %d, want the rest of its chunk", cap(f.buf))
	}
	f, ok = x.next()
	if !ok || f.truncated || !l4Valid(t, f.buf[vnetHdrLen:]) {
		t.Fatalf("partial frame: ok %v truncated %v, or its checksum was not finished", ok, f.truncated)
	}
	for i, what := range []string{"no headroom", "multi-buffer"} {
		if f, ok = x.next(); !ok || !f.truncated {
			t.Fatalf("frame %d (%s): ok %v truncated %v, want a truncated frame", i+3, what, ok, f.truncated)
		}
	}
	if _, ok := x.next(); ok {
		t.Fatal("a fifth frame out of four")
	}
	if atomic.LoadUint32(x.rx.cons) != 0 {
		t.Fatal("receive ring consumed before the round ended")
	}
	x.releaseHeld()
	if got := atomic.LoadUint32(x.rx.cons); got != 4 {
		t.Fatalf("receive consumer %d after the round, want 4", got)
	}
	if got := atomic.LoadUint32(x.fill.prod); got != 8 {
		t.Fatalf("fill producer %d, want 8: the four chunks back", got)
	}
	for i, want := range []uint64{0, 2048, 4096, 6144} {
		if got := *x.fill.addr(uint32(4 + i)); got != want {
			t.Errorf("fill slot %d holds %d, want chunk %d", 4+i, got, want)
		}
	}
	if n := x.stats().Rx; n != 2 {
		t.Errorf("Rx %d, want the 2 frames handed out whole", n)
	}
}

func TestXSKTransmit(t *testing.T) {
	x := fakeXSK(2, 4)
	frames := [][]byte{[]byte("first frame"), []byte("second")}
	for _, f := range frames {
		if !x.queue(f) {
			t.Fatal("queue refused with chunks free")
		}
	}
	if atomic.LoadUint32(x.tx.prod) != 0 {
		t.Fatal("descriptors published before flush")
	}
	x.flush() // the kick fails (no socket); the descriptors stay published
	if got := atomic.LoadUint32(x.tx.prod); got != 2 {
		t.Fatalf("transmit producer %d after flush, want 2", got)
	}
	seen := map[uint64]bool{}
	for i, f := range frames {
		d := x.tx.frame(uint32(i))
		if d.Addr < 2*2048 || d.Addr%2048 != 0 || seen[d.Addr] {
			t.Fatalf("descriptor %d: address %d is not a fresh transmit chunk", i, d.Addr)
		}
		seen[d.Addr] = true
		if !bytes.Equal(x.umem[d.Addr:d.Addr+uint64(d.Len)], f) {
			t.Fatalf("descriptor %d: chunk holds %q, want %q", i, x.umem[d.Addr:d.Addr+uint64(d.Len)], f)
		}
	}
	// Two more fill the four chunks; with none completed, a fifth is
	// refused.
	for i := 0; i < 2; i++ {
		if !x.queue([]byte("more")) {
			t.Fatal("queue refused with chunks free")
		}
	}
	if x.queue([]byte("one too many")) {
		t.Fatal("queued a fifth frame into four chunks")
	}
	// The kernel completes the first two: their chunks come back.
	for i := uint32(0); i < 2; i++ {
		*x.comp.addr(i) = x.tx.frame(i).Addr
	}
	atomic.StoreUint32(x.comp.prod, 2)
	if !x.queue([]byte("after completion")) {
		t.Fatal("queue refused after two completions")
	}
	if got := atomic.LoadUint32(x.comp.cons); got != 2 {
		t.Fatalf("completion consumer %d, want 2", got)
	}
	if n := x.stats().Tx; n != 2 {
		t.Errorf("Tx %d, want the 2 completed", n)
	}
}

// TestPortQueueOrder: a port with a socket sends plain frames by it and
// super-frames by sendmmsg, and a switch flushes the other path first, so
// a flow's frames leave in order.
func TestPortQueueOrder(t *testing.T) {
	p := fakePort(1, d0MAC, 8)
	p.xsk = fakeXSK(2, 4)
	plain := tcpFrame(t, cip, vip, d0MAC, false, true, 10)
	super := tcpFrame(t, cip, vip, d0MAC, false, true, 10)
	header.VirtioNetHdr(super).SetGSOType(header.VirtioNetHdrGSOTCPv4)
	partial := tcpFrame(t, cip, vip, d0MAC, false, true, 20)
	copy(partial[vnetHdrLen:], partialOf(t, partial))
	vnet := header.VirtioNetHdr(partial)
	vnet.SetFlags(header.VirtioNetHdrFNeedsCsum)
	vnet.SetCsumStart(header.EthernetMinimumSize + header.IPv4MinimumSize)
	vnet.SetCsumOffset(header.TCPChecksumOffset)

	if s, d := p.queue(plain); s != 1 || d != 0 {
		t.Fatalf("plain frame: sent %d dropped %d, want 1 0", s, d)
	}
	p.queue(super)
	if atomic.LoadUint32(p.xsk.tx.prod) != 1 || p.txN != 1 {
		t.Fatalf("after a super-frame: %d published on the socket, %d in the sendmmsg batch; want 1 and 1", atomic.LoadUint32(p.xsk.tx.prod), p.txN)
	}
	// Back to the socket: the sendmmsg batch goes first (fd -1: the
	// kernel refuses it, which counts as a drop).
	if _, d := p.queue(partial); d != 1 || p.txN != 0 {
		t.Fatalf("switching back: dropped %d, batch %d; want the batch flushed first", d, p.txN)
	}
	p.flush()
	d := p.xsk.tx.frame(1)
	if got := p.xsk.umem[d.Addr : d.Addr+uint64(d.Len)]; !l4Valid(t, got) {
		t.Fatal("a partial frame left by the socket without its checksum finished")
	}
}

// BenchmarkXSKQueue is the AF_XDP transmit path's own work per frame:
// the copy into a chunk and the ring bookkeeping, with the kernel's
// completions played back every 64 frames (the kick itself is a failing
// syscall here, once per 64).
func BenchmarkXSKQueue(b *testing.B) {
	x := fakeXSK(2, 1024)
	frame := tcpFrame(b, cip, vip, d0MAC, false, true, 64)[vnetHdrLen:]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !x.queue(frame) {
			b.Fatal("queue refused")
		}
		if i%64 == 63 {
			x.flush()
			prod := atomic.LoadUint32(x.comp.prod)
			for j := uint32(0); j < 64; j++ {
				*x.comp.addr(prod + j) = x.tx.frame(x.txProd - 64 + j).Addr
			}
			atomic.StoreUint32(x.comp.prod, prod+64)
			atomic.StoreUint32(x.tx.cons, x.txProd)
			x.reap()
		}
	}
}
