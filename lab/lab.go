package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrClosed is returned by a Lab's methods after Close.
var ErrClosed = errors.New("lab: closed")

// cmdTimeout bounds every short ip/sysctl/ethtool command the lab runs.
const cmdTimeout = 10 * time.Second

// Lab is a set of network namespaces and the processes running in them.
// Everything it creates carries its random prefix and is removed by Close.
type Lab struct {
	prefix string
	dir    string

	mu      sync.Mutex
	nss     []*NS
	procs   []*Proc
	closers []func()
	closed  bool
}

// New creates an empty lab. Its namespaces are named "uvs<6 hex>-<ns>",
// the hex drawn at random per lab so that concurrent runs never collide;
// name is only a hint in the lab's temporary folder.
func New(name string) (*Lab, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	l := &Lab{prefix: "uvs" + hex.EncodeToString(b)}
	dir, err := os.MkdirTemp("", l.prefix+"-"+sanitize(name)+"-")
	if err != nil {
		return nil, err
	}
	l.dir = dir
	return l, nil
}

// sanitize keeps a name usable in a file name.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// Prefix is the lab's namespace name prefix, "uvs<6 hex>".
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns a folder of the lab's for name, created on first use and
// removed by Close.
func (l *Lab) Dir(name string) string {
	d := filepath.Join(l.dir, sanitize(name))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// register records what Close must undo; it fails once the lab is closed.
func (l *Lab) register(f func(l *Lab)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	f(l)
	return nil
}

// NS is one network namespace of a lab.
type NS struct {
	lab  *Lab
	name string
}

// Name is the namespace's full name, as `ip netns` knows it.
func (n *NS) Name() string { return n.name }

// Short is the name given to Lab.NS, without the lab's prefix.
func (n *NS) Short() string { return strings.TrimPrefix(n.name, n.lab.prefix+"-") }

// permissionText is how iproute2 and sysctl report a missing privilege.
var permissionText = []string{"Operation not permitted", "Permission denied"}

// run runs a command and returns its combined output. A failure's error
// carries the output, and matches os.ErrPermission when the command
// reported a missing privilege.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err == nil {
		return string(out), nil
	}
	err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	for _, p := range permissionText {
		if bytes.Contains(out, []byte(p)) {
			return string(out), fmt.Errorf("%w (%w)", err, os.ErrPermission)
		}
	}
	return string(out), err
}

func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := run(ctx, "ip", args...)
	return err
}

// NS creates the namespace "<prefix>-<name>" with lo up. Close deletes it.
func (l *Lab) NS(name string) (*NS, error) {
	n := &NS{lab: l, name: l.prefix + "-" + name}
	// Register first so that a namespace left by a half-failed add is
	// still deleted; deleting a missing one only costs an error.
	if err := l.register(func(l *Lab) { l.nss = append(l.nss, n) }); err != nil {
		return nil, err
	}
	if err := ipCmd("netns", "add", n.name); err != nil {
		return nil, err
	}
	if err := n.Up("lo"); err != nil {
		return nil, err
	}
	return n, nil
}

// Veth joins a (device aDev) and b (device bDev) with a veth pair created
// directly inside the namespaces, both ends up. Device names are per
// namespace, so short names (c0, d0) never collide between labs.
func (l *Lab) Veth(a *NS, aDev string, b *NS, bDev string) error {
	return l.VethQueues(a, aDev, b, bDev, 0)
}

// VethQueues is Veth with queues transmit and receive queues on both ends
// (0: the kernel's default, one).
func (l *Lab) VethQueues(a *NS, aDev string, b *NS, bDev string, queues int) error {
	var q []string
	if queues > 0 {
		q = []string{"numtxqueues", strconv.Itoa(queues), "numrxqueues", strconv.Itoa(queues)}
	}
	args := append([]string{"-n", a.name, "link", "add", aDev}, q...)
	args = append(args, "type", "veth", "peer", "name", bDev)
	args = append(args, q...)
	if err := ipCmd(append(args, "netns", b.name)...); err != nil {
		return err
	}
	if err := a.Up(aDev); err != nil {
		return err
	}
	return b.Up(bDev)
}

// Up sets a device up.
func (n *NS) Up(dev string) error { return ipCmd("-n", n.name, "link", "set", dev, "up") }

// Addr adds an address (CIDR) to a device.
func (n *NS) Addr(dev, cidr string) error {
	return ipCmd("-n", n.name, "addr", "add", cidr, "dev", dev)
}

// Route adds a route: args as after `ip route add`.
func (n *NS) Route(args ...string) error {
	return ipCmd(append([]string{"-n", n.name, "route", "add"}, args...)...)
}

// Bridge creates a bridge (STP off, so ports forward at once) and enslaves
// ports to it, all up.
func (n *NS) Bridge(name string, ports ...string) error {
	if err := ipCmd("-n", n.name, "link", "add", name, "type", "bridge"); err != nil {
		return err
	}
	if err := n.Up(name); err != nil {
		return err
	}
	for _, p := range ports {
		if err := ipCmd("-n", n.name, "link", "set", p, "master", name, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Sysctl sets a sysctl inside the namespace (net.* keys are per namespace).
func (n *NS) Sysctl(key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := n.Run(ctx, "sysctl", "-qw", key+"="+value)
	return err
}

// Ethtool runs `ethtool -K dev features...` inside the namespace, for
// example Ethtool("d0", "tso", "off", "gro", "off").
func (n *NS) Ethtool(dev string, features ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := n.Run(ctx, "ethtool", append([]string{"-K", dev}, features...)...)
	return err
}

// MAC returns a device's hardware address.
func (n *NS) MAC(dev string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// NeighMAC is the hardware address of the namespace's neighbour entry for
// ip (`ip neigh show`), "" if it has none.
func (n *NS) NeighMAC(ip netip.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := n.Run(ctx, "ip", "neigh", "show", ip.String())
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		return f[i+1], nil
	}
	return "", nil
}

// Exec returns a command that runs inside the namespace.
func (n *NS) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined
// output; a failure's error carries the output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// Close stops every process (newest first), closes what the lab's servers
// hold, kills anything else still running in its namespaces, deletes the
// namespaces (which removes their links) and its temporary folder. It
// always does all of that, whatever fails, and is safe to call more than
// once: later calls return nil.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, nss, closers := l.procs, l.nss, l.closers
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		// Anything started outside Start (Exec, Run with a long
		// context) dies too, or it would keep the namespace alive.
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		if out, err := run(ctx, "ip", "netns", "pids", nss[i].name); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		cancel()
		if err := ipCmd("netns", "del", nss[i].name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Eventually calls cond at once and then every interval until it returns
// nil or ctx ends; in that case it returns ctx's error with cond's last.
func Eventually(ctx context.Context, every time.Duration, cond func() error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
