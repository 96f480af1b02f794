package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr: x/sys/unix has the Msghdr but no sendmmsg.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// SendFrames sends frames, cycling through them, in sendmmsg batches of
// 64 through an AF_PACKET socket on ifname until d has passed or ctx
// ends. It must run on a thread inside the interface's namespace (for
// the lab: in NS.Do). The socket is bound with protocol 0, so it
// receives nothing. It returns the frames the kernel accepted and the
// time spent sending.
func SendFrames(ctx context.Context, ifname string, frames [][]byte, d time.Duration) (sent uint64, elapsed time.Duration, err error) {
	if len(frames) == 0 {
		return 0, 0, errors.New("send frames: no frames")
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, 0, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("af_packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return 0, 0, fmt.Errorf("af_packet bind %s: %w", ifname, err)
	}
	// Every message names the device and EtherType, so the kernel need
	// not parse the frame for skb->protocol.
	sll := unix.RawSockaddrLinklayer{
		Family:   unix.AF_PACKET,
		Protocol: htons(etherTypeIP4),
		Ifindex:  int32(ifi.Index),
		Halen:    6,
	}
	// One ring of messages covering every frame, so a batch is a window
	// into it and nothing is rebuilt in the loop.
	n := len(frames)
	iovs := make([]unix.Iovec, n)
	msgs := make([]mmsghdr, n+udpBatch) // the tail repeats the head: windows never wrap
	for i := range msgs {
		f := frames[i%n]
		if i < n {
			iovs[i].Base = &f[0]
			iovs[i].SetLen(len(f))
		}
		msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&sll))
		msgs[i].hdr.Namelen = unix.SizeofSockaddrLinklayer
		msgs[i].hdr.Iov = &iovs[i%n]
		msgs[i].hdr.SetIovlen(1)
	}
	start := time.Now()
	deadline := start.Add(d)
	pos := 0
	for {
		now := time.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			elapsed = now.Sub(start)
			break
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[pos])), udpBatch, 0, 0, 0)
		switch errno {
		case 0:
		case unix.EINTR, unix.EAGAIN, unix.ENOBUFS:
			continue
		default:
			return sent, time.Since(start), fmt.Errorf("sendmmsg: %w", errno)
		}
		sent += uint64(r)
		pos = (pos + int(r)) % n
	}
	runtime.KeepAlive(frames)
	runtime.KeepAlive(iovs)
	runtime.KeepAlive(msgs)
	runtime.KeepAlive(&sll)
	return sent, elapsed, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
