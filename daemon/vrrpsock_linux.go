package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/vrrp"
)

// vrrpSock is an AF_PACKET socket on one interface that receives IPv4
// frames of protocol 112 (VRRP) and sends whole Ethernet frames: adverts
// and gratuitous ARPs leave through uvs's own packet path, never through
// the kernel's IP stack, which does not own the virtual addresses.
type vrrpSock struct {
	fd      int
	ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// vrrpFilter accepts IPv4 frames whose protocol is 112, up to their
// whole length.
func vrrpFilter() ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IP, SkipTrue: 3},
		bpf.LoadAbsolute{Off: header.EthernetMinimumSize + 9, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: header.ProtoVRRP, SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return nil, err
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

func openVRRPSock(ifindex int) (*vrrpSock, error) {
	// Protocol 0 until the filter is in place, then bind with ETH_P_IP:
	// nothing unfiltered is queued in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vrrp socket: %w", err)
	}
	s := &vrrpSock{fd: fd, ifindex: ifindex}
	fail := func(what string, err error) (*vrrpSock, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp socket: %s: %w", what, err)
	}
	f, err := vrrpFilter()
	if err != nil {
		return fail("filter", err)
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}); err != nil {
		return fail("attach filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("ignore outgoing", err)
	}
	// Wake up now and then so that read notices shutdown.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}); err != nil {
		return fail("receive timeout", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	// Real NICs filter multicast MACs nobody asked for.
	if err := s.addMembership(unix.PACKET_MR_MULTICAST, vrrp.MulticastMAC); err != nil {
		return fail("multicast membership", err)
	}
	return s, nil
}

// addUnicast makes the interface accept frames to a virtual MAC.
func (s *vrrpSock) addUnicast(mac [6]byte) error {
	return s.addMembership(unix.PACKET_MR_UNICAST, mac)
}

func (s *vrrpSock) addMembership(typ uint16, mac [6]byte) error {
	mreq := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: typ, Alen: 6}
	copy(mreq.Address[:], mac[:])
	return unix.SetsockoptPacketMreq(s.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
}

// send sends a whole Ethernet frame to its destination MAC.
func (s *vrrpSock) send(frame []byte) error {
	dst := header.Ethernet(frame).Dst()
	sa := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6}
	copy(sa.Addr[:], dst[:])
	return unix.Sendto(s.fd, frame, 0, sa)
}

// read delivers received VRRP frames to ch until ctx is done. Frames are
// copied: adverts are a few per second.
func (s *vrrpSock) read(ctx context.Context, ch chan<- rxAdvert) {
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EBADF) {
				return
			}
			time.Sleep(10 * time.Millisecond) // a persistent error must not spin
			continue
		}
		if n < header.EthernetMinimumSize+header.IPv4MinimumSize {
			continue
		}
		e := header.Ethernet(buf[:n])
		a := rxAdvert{ifindex: s.ifindex, srcMAC: e.Src(), ip: append([]byte(nil), e.Payload()...)}
		select {
		case ch <- a:
		default: // the manager is behind: adverts repeat
		}
	}
}

func (s *vrrpSock) close() { unix.Close(s.fd) }
