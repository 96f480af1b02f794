package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/vishvananda/netlink"

	"github.com/uvs-project/uvs/modes"
	"golang.org/x/sys/unix"
)

// decap takes IPIP packets addressed to this host off the wire and writes
// their inner packets to a TUN device, so the local stack receives them
// as if the kernel had decapsulated them.
type decap struct {
	log  *slog.Logger
	tun  *os.File
	name string
	sock int
}

const tunName = "uvstun0"

func newDecap(log *slog.Logger) (*decap, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(tunName)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	d := &decap{log: log, tun: os.NewFile(uintptr(fd), "/dev/net/tun"), name: tunName, sock: -1}
	link, err := netlink.LinkByName(tunName)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("tun link: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		d.close()
		return nil, fmt.Errorf("tun up: %w", err)
	}
	p := "/proc/sys/net/ipv4/conf/" + tunName + "/rp_filter"
	if err := os.WriteFile(p, []byte("0"), 0o644); err != nil {
		d.close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	// SOCK_DGRAM: the kernel strips the Ethernet header; protocol IP.
	s, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
	if err != nil {
		d.close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	d.sock = s
	// Only IPIP (byte 9 of the IPv4 header is 4), and nothing we send.
	filter := []unix.SockFilter{
		{Code: 0x30, K: 9},               // ldb [9]
		{Code: 0x15, Jt: 0, Jf: 1, K: 4}, // jeq #4
		{Code: 0x06, K: 0xffff},          // ret #65535
		{Code: 0x06, K: 0},               // ret #0
	}
	fp := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(s, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		d.close()
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	_ = unix.SetsockoptInt(s, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	// A packet socket cannot be shut down and closing it does not wake a
	// blocked read: wake up now and then to notice a stop.
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}); err != nil {
		d.close()
		return nil, fmt.Errorf("receive timeout: %w", err)
	}
	return d, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (d *decap) close() {
	if d.sock >= 0 {
		unix.Close(d.sock)
		d.sock = -1
	}
	if d.tun != nil {
		d.tun.Close()
		d.tun = nil
	}
}

// run decapsulates until ctx is done.
func (d *decap) run(ctx context.Context) error {
	buf := make([]byte, 65536)
	var n uint64
	for {
		k, from, err := unix.Recvfrom(d.sock, buf, 0)
		if ctx.Err() != nil {
			d.log.Info("uvsrs: decapsulated", "packets", n)
			return nil
		}
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return fmt.Errorf("recv: %w", err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		inner, ok := modes.DecapIPIP(buf[:k])
		if !ok {
			continue
		}
		if _, err := d.tun.Write(inner); err != nil {
			d.log.Warn("uvsrs: tun write", "err", err)
			continue
		}
		n++
	}
}
