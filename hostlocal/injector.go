package hostlocal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
)

// ErrNotIPv4 is returned by Injector.Write for a buffer that is not an
// IPv4 packet (shorter than an IPv4 header, or another version).
var ErrNotIPv4 = errors.New("hostlocal: not an IPv4 packet")

// Injector writes IPv4 packets into the local stack through a TUN device
// (IFF_TUN|IFF_NO_PI), so that the kernel delivers them to local sockets
// as if they had arrived on that device. It is safe for concurrent use.
type Injector struct {
	f    *os.File
	name string
}

// OpenInjector creates the TUN device name in the network namespace of
// the calling thread (lock the thread, or call it inside a namespace
// switcher such as lab's NS.Do, to pick one); a "%d" in name is replaced
// by the kernel with a free number, which Name tells. It disables IPv6 on
// the device, sets net.ipv4.conf.<name>.accept_local=1 and rp_filter=0
// and brings it up. The device exists until Close; the kernel removes it
// with its file descriptor, so it never outlives the process.
//
// The device carries no route: packets written to it are delivered when
// their destination is a local address (a VIP on lo), and the replies
// leave through the namespace's normal routes.
//
// Reverse-path filtering: the kernel applies the larger of
// net.ipv4.conf.all.rp_filter and the device's. Where all.rp_filter is
// not 0 when OpenInjector runs, the device's is set to 2 (loose) instead,
// since strict mode drops every injected packet (its source is routed
// through another device), and the device gets the RFC 7600 dummy
// address 192.0.0.8/32 (scope host), since the kernel drops packets under
// any rp_filter on a device without an IPv4 address. Raising
// all.rp_filter from 0 later stops delivery.
func OpenInjector(name string) (*Injector, error) {
	if err := checkIfname(name, true); err != nil {
		return nil, err
	}
	// Everything below must happen in one namespace: the caller's thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("hostlocal: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostlocal: tun %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostlocal: TUNSETIFF %q: %w", name, err)
	}
	// A non-blocking descriptor joins the runtime poller, so Close never
	// races a Write on a reused descriptor number.
	inj := &Injector{f: os.NewFile(uintptr(fd), "/dev/net/tun"), name: ifr.Name()}
	if err := inj.setup(); err != nil {
		inj.f.Close()
		return nil, err
	}
	return inj, nil
}

// setup sets the device's sysctls and brings it up; the calling thread
// must be locked in the device's namespace.
func (i *Injector) setup() error {
	v6 := "/proc/sys/net/ipv6/conf/" + i.name + "/disable_ipv6"
	// Without IPv6 in the kernel (or in this namespace) there is nothing
	// to disable.
	if err := os.WriteFile(v6, []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostlocal: %s: %w", v6, err)
	}
	rp := "0"
	all, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter")
	if err != nil {
		return fmt.Errorf("hostlocal: read rp_filter: %w", err)
	}
	if strings.TrimSpace(string(all)) != "0" {
		rp = "2"
		if err := addDummyAddr(i.name); err != nil {
			return err
		}
	}
	conf := "/proc/sys/net/ipv4/conf/" + i.name + "/"
	for _, kv := range [][2]string{{"rp_filter", rp}, {"accept_local", "1"}} {
		if err := os.WriteFile(conf+kv[0], []byte(kv[1]), 0); err != nil {
			return fmt.Errorf("hostlocal: %s%s: %w", conf, kv[0], err)
		}
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hostlocal: socket: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(i.name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("hostlocal: SIOCGIFFLAGS %s: %w", i.name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("hostlocal: set %s up: %w", i.name, err)
	}
	return nil
}

// dummyAddr is RFC 7600's IPv4 dummy address, for an interface that
// needs one but has none of its own.
var dummyAddr = net.IPNet{IP: net.IPv4(192, 0, 0, 8).To4(), Mask: net.CIDRMask(32, 32)}

// addDummyAddr adds dummyAddr to the device, scope host so that it is
// never chosen as a source address; the thread must be locked in the
// device's namespace (netlink's package functions open their socket
// there).
func addDummyAddr(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("hostlocal: %s: %w", name, err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &dummyAddr, Scope: unix.RT_SCOPE_HOST}); err != nil {
		return fmt.Errorf("hostlocal: add %v to %s: %w", &dummyAddr, name, err)
	}
	return nil
}

// Write injects one IPv4 packet (no link-layer header). The kernel checks
// its IP and transport checksums, as for any packet from the wire, so a
// packet captured with offloaded (partial) checksums must be completed
// first. Write does not allocate, except for the error it returns.
func (i *Injector) Write(ipPacket []byte) error {
	if len(ipPacket) < header.IPv4MinimumSize || header.IPv4(ipPacket).Version() != 4 {
		return ErrNotIPv4
	}
	n, err := i.f.Write(ipPacket)
	if err != nil {
		return err
	}
	if n != len(ipPacket) {
		return io.ErrShortWrite
	}
	return nil
}

// Name returns the device's name as the kernel registered it.
func (i *Injector) Name() string { return i.name }

// Close closes the device's descriptor, which removes the device. Later
// calls return nil; Write after Close returns an error matching
// os.ErrClosed.
func (i *Injector) Close() error {
	if err := i.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// checkIfname rejects what the kernel would refuse as a device name, and
// '"' (which would end an nft string). template allows '%', which the
// kernel replaces by a number ("uvs%d").
func checkIfname(name string, template bool) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool {
			return r <= ' ' || r == '/' || r == ':' || r == '"' || (r == '%' && !template) || r >= 0x7f
		}) {
		return fmt.Errorf("hostlocal: invalid interface name %q", name)
	}
	return nil
}
