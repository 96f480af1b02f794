package nfqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by a Conn's methods after Close. It wraps
// net.ErrClosed, so loops written for net connections stop on it too.
var ErrClosed = fmt.Errorf("nfqueue: %w", net.ErrClosed)

// Config defaults and socket settings.
const (
	defaultCopyRange = 65535
	defaultMaxLen    = 4096
	defaultBatch     = 64
	// maxCopyRange is the most a payload attribute can hold (its 16-bit
	// length includes the attribute header): the kernel clamps
	// CopyRange to it (NFQNL_MAX_COPY_RANGE).
	maxCopyRange = 0xffff - nlaHdrLen
	// msgOverhead is room for the headers and the other attributes of
	// a packet message around its payload.
	msgOverhead = 1024
	// rcvBuf holds a full default queue of MTU-sized packets with their
	// skb overhead, so a burst waits in the socket rather than failing.
	rcvBuf = 16 << 20
	// recvTimeout bounds every blocking receive, so Read returns and
	// Close completes within it.
	recvTimeout = 100 * time.Millisecond
	// ackTimeout bounds Open's wait for the kernel's answers.
	ackTimeout = 2 * time.Second
)

// Config is a queue binding.
type Config struct {
	Queue     uint16 // queue number, as in the rule's `queue num`
	CopyRange uint32 // bytes of each packet to copy; 0 means 65535
	MaxLen    uint32 // NFQA_CFG_QUEUE_MAXLEN; 0 means 4096
	Batch     int    // packets per Read (one recvmmsg); 0 means 64
}

// Stats are a Conn's counters since Open.
type Stats struct {
	Reads     uint64 // receive calls that returned data
	Packets   uint64 // packets returned by Read
	Skipped   uint64 // non-packet messages (ACKs, other types), and packets Open discarded with Drop
	Errors    uint64 // netlink error messages: the kernel refused a verdict (an unknown ID)
	Malformed uint64 // packet messages ParsePacket rejected, and unframeable datagrams
	Truncated uint64 // datagrams larger than the read buffer
	Overflow  uint64 // packet messages beyond len(pkts) in one datagram (the kernel sends one per datagram)
	Verdicts  uint64 // verdict messages sent
	LastErrno syscall.Errno
}

// Conn is a bound NFQUEUE queue. One goroutine at a time may call Read;
// Verdict, VerdictBatch, Stats and Close are safe from any goroutine,
// concurrently with Read.
type Conn struct {
	fd    int
	queue uint16

	// mu is held shared by every use of fd and exclusively by Close,
	// so the descriptor is never closed (and its number reused) under a
	// receive in progress.
	mu     sync.RWMutex
	closed atomic.Bool

	bufSize int
	buf     []byte
	iovs    []unix.Iovec
	msgs    []unix.Mmsghdr

	seq                                             atomic.Uint32
	reads, packets, skipped, errs, malformed, trunc atomic.Uint64
	overflow, verdicts                              atomic.Uint64
	lastErrno                                       atomic.Uint32
}

// Open binds queue cfg.Queue in the calling thread's network namespace:
// copy mode NFQNL_COPY_PACKET with cfg.CopyRange bytes, cfg.MaxLen queued
// packets at most, NETLINK_NO_ENOBUFS, a 16 MiB receive buffer
// (SO_RCVBUFFORCE, else SO_RCVBUF) and a 100 ms receive timeout. It
// checks the kernel's answer to each config message: an error wraps its
// errno, unix.EPERM when another socket holds the queue (Linux answers
// EBUSY only to a second bind from the same socket) or without
// CAP_NET_ADMIN. NFQA_CFG_F_GSO stays unset, so the kernel
// completes checksums and segments GSO packets before queueing them.
func Open(cfg Config) (*Conn, error) {
	if cfg.CopyRange == 0 {
		cfg.CopyRange = defaultCopyRange
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = defaultMaxLen
	}
	if cfg.Batch <= 0 {
		cfg.Batch = defaultBatch
	}
	fd, err := openSocket()
	if err != nil {
		return nil, fmt.Errorf("nfqueue: queue %d: %w", cfg.Queue, err)
	}
	if err := setSockopts(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue: queue %d: %w", cfg.Queue, err)
	}
	c := &Conn{fd: fd, queue: cfg.Queue}
	c.bufSize = align4(int(min(cfg.CopyRange, maxCopyRange)) + msgOverhead)
	c.buf = make([]byte, c.bufSize*cfg.Batch)
	c.iovs = make([]unix.Iovec, cfg.Batch)
	c.msgs = make([]unix.Mmsghdr, cfg.Batch)
	for i := range c.msgs {
		c.iovs[i].Base = &c.buf[i*c.bufSize]
		c.iovs[i].SetLen(c.bufSize)
		c.msgs[i].Hdr.Iov = &c.iovs[i]
		c.msgs[i].Hdr.SetIovlen(1)
	}

	// Bind and parameters in one datagram: the kernel runs both before
	// any packet can meet a queue still in its default META copy mode.
	bind, params := c.seq.Add(1), c.seq.Add(1)
	req := AppendConfigCmd(nil, bind, cfg.Queue, CmdBind)
	req = AppendConfigParams(req, params, cfg.Queue, CopyPacket, cfg.CopyRange, cfg.MaxLen)
	if _, err := unix.Write(fd, req); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nfqueue: queue %d: config: %w", cfg.Queue, os.NewSyscallError("write", err))
	}
	what := map[uint32]string{bind: "bind", params: "set copy mode and maxlen"}
	err = awaitAcks(fd, c.buf[:c.bufSize], bind, params, 2, func(msg []byte) {
		// A packet queued between the ACKs: it cannot be returned by
		// Read, so it must not stay queued.
		var p Packet
		if binary.NativeEndian.Uint16(msg[nlmType:]) == msgPacket && ParsePacket(msg, &p) == nil {
			_ = c.Verdict(p.ID, Drop)
		}
		c.skipped.Add(1)
	})
	if err != nil {
		unix.Close(fd)
		var ae *ackError
		if errors.As(err, &ae) {
			hint := ""
			if ae.errno == unix.EPERM || ae.errno == unix.EBUSY {
				// The kernel refuses another socket's bind with EPERM
				// (EBUSY only for a second bind on the same socket).
				hint = " (the queue is bound by another socket, or CAP_NET_ADMIN is missing)"
			}
			return nil, fmt.Errorf("nfqueue: queue %d: %s: %w%s", cfg.Queue, what[ae.seq], ae.errno, hint)
		}
		return nil, fmt.Errorf("nfqueue: queue %d: %w", cfg.Queue, err)
	}
	return c, nil
}

// openSocket opens and binds a NETLINK_NETFILTER socket in the calling
// thread's namespace.
func openSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	// Errors need not echo the request back.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return fd, nil
}

func setSockopts(fd int) error {
	// Without it a full socket buffer makes the next receive fail with
	// ENOBUFS; the packets themselves are lost either way.
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1); err != nil {
		return os.NewSyscallError("setsockopt NETLINK_NO_ENOBUFS", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		// Not CAP_NET_ADMIN in the user namespace: as much as rmem_max allows.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf); err != nil {
			return os.NewSyscallError("setsockopt SO_RCVBUF", err)
		}
	}
	return nil
}

// ackError is a netlink error answer to request seq.
type ackError struct {
	seq   uint32
	errno syscall.Errno
}

func (e *ackError) Error() string { return fmt.Sprintf("request %d: %v", e.seq, e.errno) }
func (e *ackError) Unwrap() error { return e.errno }

// awaitAcks reads fd until the kernel has sent acks ACKs to requests with
// sequence numbers in [first, last], returning the first error answer
// among them as an *ackError. Other messages go to other (if not nil).
// It waits ackTimeout at most.
func awaitAcks(fd int, buf []byte, first, last uint32, acks int, other func(msg []byte)) error {
	pending := acks
	deadline := time.Now().Add(ackTimeout)
	for pending > 0 {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if (err == unix.EAGAIN || err == unix.EINTR) && time.Now().Before(deadline) {
				continue
			}
			if err == unix.EAGAIN {
				return fmt.Errorf("no answer from the kernel within %v", ackTimeout)
			}
			return os.NewSyscallError("read", err)
		}
		for data := buf[:n]; len(data) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(data[nlmLen:]))
			if l < nlmsgHdrLen || l > len(data) {
				return errors.New("malformed netlink answer")
			}
			msg := data[:l]
			data = data[min(align4(l), len(data)):]
			seq := binary.NativeEndian.Uint32(msg[nlmSeq:])
			if binary.NativeEndian.Uint16(msg[nlmType:]) != nlmsgError || seq-first > last-first {
				if other != nil {
					other(msg)
				}
				continue
			}
			if len(msg) < nlmsgHdrLen+4 {
				return errors.New("short netlink error message")
			}
			pending--
			if e := int32(binary.NativeEndian.Uint32(msg[nlmsgHdrLen:])); e != 0 {
				return &ackError{seq: seq, errno: syscall.Errno(-e)}
			}
		}
	}
	return nil
}

// Read fills pkts with queued packets, at most len(pkts) and the
// Config's Batch, from one recvmmsg that waits for the first datagram
// (100 ms at most) and takes what else is already queued. It returns
// (0, nil) when the timeout passed with nothing queued. Non-packet
// messages, netlink errors (a refused verdict) and malformed packet
// messages are skipped and counted in Stats; an error means the socket
// failed, or wraps ErrClosed after Close. The packets' Payloads alias
// the Conn's buffer until the next Read. Read allocates nothing.
func (c *Conn) Read(pkts []Packet) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0, ErrClosed
	}
	want := min(len(pkts), len(c.msgs))
	if want == 0 {
		return 0, nil
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.msgs[0])),
		uintptr(want), unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		switch {
		case c.closed.Load():
			return 0, ErrClosed
		case errno == unix.EAGAIN || errno == unix.EINTR:
			return 0, nil
		case errno == unix.ENOBUFS:
			// Packets were lost to a full buffer; the socket is fine.
			c.lastErrno.Store(uint32(errno))
			return 0, nil
		}
		return 0, &net.OpError{Op: "read", Net: "netlink", Err: os.NewSyscallError("recvmmsg", errno)}
	}
	c.reads.Add(1)
	n := 0
	for i := range int(r) {
		m := &c.msgs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.trunc.Add(1)
			continue
		}
		data := c.buf[i*c.bufSize : i*c.bufSize+int(m.Len)]
		for len(data) >= nlmsgHdrLen {
			l := int(binary.NativeEndian.Uint32(data[nlmLen:]))
			if l < nlmsgHdrLen || l > len(data) {
				c.malformed.Add(1)
				break
			}
			msg := data[:l]
			data = data[min(align4(l), len(data)):]
			switch binary.NativeEndian.Uint16(msg[nlmType:]) {
			case msgPacket:
				switch {
				case n == len(pkts):
					c.overflow.Add(1)
				case ParsePacket(msg, &pkts[n]) == nil:
					n++
				default:
					c.malformed.Add(1)
				}
			case nlmsgError:
				if len(msg) >= nlmsgHdrLen+4 {
					if e := int32(binary.NativeEndian.Uint32(msg[nlmsgHdrLen:])); e != 0 {
						c.errs.Add(1)
						c.lastErrno.Store(uint32(-e))
						continue
					}
				}
				c.skipped.Add(1)
			default:
				c.skipped.Add(1)
			}
		}
	}
	c.packets.Add(uint64(n))
	return n, nil
}

// Verdict gives one packet the verdict (Drop, Accept). It asks for no
// ACK and allocates nothing; a verdict the kernel refuses shows up in
// Stats.Errors.
func (c *Conn) Verdict(id, verdict uint32) error {
	var buf [verdictMsgLength]byte
	return c.send(AppendVerdict(buf[:0], 0, c.queue, id, verdict))
}

// VerdictBatch gives every packet of the queue with an ID up to and
// including id the verdict, like Verdict otherwise.
func (c *Conn) VerdictBatch(id, verdict uint32) error {
	var buf [verdictMsgLength]byte
	return c.send(AppendVerdictBatch(buf[:0], 0, c.queue, id, verdict))
}

func (c *Conn) send(b []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
		switch errno {
		case 0:
			c.verdicts.Add(1)
			return nil
		case unix.EINTR:
			continue
		}
		return &net.OpError{Op: "write", Net: "netlink", Err: os.NewSyscallError("sendto", errno)}
	}
}

// Stats returns the Conn's counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Reads:     c.reads.Load(),
		Packets:   c.packets.Load(),
		Skipped:   c.skipped.Load(),
		Errors:    c.errs.Load(),
		Malformed: c.malformed.Load(),
		Truncated: c.trunc.Load(),
		Overflow:  c.overflow.Load(),
		Verdicts:  c.verdicts.Load(),
		LastErrno: syscall.Errno(c.lastErrno.Load()),
	}
}

// Close unbinds the queue (the kernel drops the packets still queued)
// and closes the socket. A Read in progress returns ErrClosed within
// the 100 ms receive timeout, and Close waits for it. Later calls return
// ErrClosed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Closing the socket would unbind too; the explicit unbind says so
	// in the kernel's own terms and costs one message.
	req := AppendConfigCmd(make([]byte, 0, 32), c.seq.Add(1), c.queue, CmdUnbind)
	_, werr := unix.Write(c.fd, req)
	if werr != nil {
		werr = fmt.Errorf("nfqueue: queue %d: unbind: %w", c.queue, os.NewSyscallError("write", werr))
	}
	if err := unix.Close(c.fd); err != nil {
		return errors.Join(werr, fmt.Errorf("nfqueue: queue %d: %w", c.queue, os.NewSyscallError("close", err)))
	}
	return werr
}
