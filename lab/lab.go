package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// RequireRoot skips t when the process cannot create network namespaces,
// unless CI=true, where it fails: CI must never hide these tests.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root for network namespaces; run as root or via make test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: not skipping)")
	}
	t.Skip(msg)
}

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

// New creates an empty lab; name is a hint shown in namespace names.
func New(name string) (*Lab, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	l := &Lab{prefix: "uvs" + hex.EncodeToString(b)}
	dir, err := os.MkdirTemp("", l.prefix+"-"+name+"-")
	if err != nil {
		return nil, err
	}
	l.dir = dir
	return l, nil
}

// NewT creates a lab for a test and closes it when the test ends, failed
// or not.
func NewT(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	l, err := New(strings.ReplaceAll(t.Name(), "/", "_"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Prefix is the lab's namespace name prefix.
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns a folder of the lab's for name, created on first use and
// removed by Close.
func (l *Lab) Dir(name string) string {
	d := filepath.Join(l.dir, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

// NS is one network namespace of a lab.
type NS struct {
	lab  *Lab
	name string
}

// Name is the namespace's full name (for ip netns exec).
func (n *NS) Name() string { return n.name }

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := run(ctx, "ip", args...)
	return err
}

// NS creates a namespace named after the lab's prefix and name, with lo up.
func (l *Lab) NS(name string) (*NS, error) {
	n := &NS{lab: l, name: l.prefix + "-" + name}
	if err := ipCmd("netns", "add", n.name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.nss = append(l.nss, n)
	l.mu.Unlock()
	if err := n.Up("lo"); err != nil {
		return nil, err
	}
	return n, nil
}

// Veth joins a (device aDev) and b (device bDev) with a veth pair created
// directly inside the namespaces, both ends up.
func (l *Lab) Veth(a *NS, aDev string, b *NS, bDev string) error {
	if err := ipCmd("-n", a.name, "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.name); err != nil {
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

// Bridge creates a bridge with the given ports, all up.
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

// Sysctl sets a sysctl inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Run(ctx, "sysctl", "-qw", key+"="+value)
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

// Exec returns a command that runs inside the namespace.
func (n *NS) Exec(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined
// output; a failure's error carries the output.
func (n *NS) Run(ctx context.Context, name string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// Proc is a background process in a namespace.
type Proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// Start starts a command in the namespace in the background; Close stops it.
func (n *NS) Start(name string, args ...string) (*Proc, error) {
	p := &Proc{done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
	p.cmd.Stdout = lockedWriter{p}
	p.cmd.Stderr = lockedWriter{p}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	n.lab.mu.Lock()
	n.lab.procs = append(n.lab.procs, p)
	n.lab.mu.Unlock()
	return p, nil
}

// Output is what the process wrote so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid is the process ID (of `ip netns exec`, which execs the command).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Stop ends the process: SIGTERM, then SIGKILL after 2 s.
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// Do runs fn on an OS thread switched into the namespace, so sockets fn
// opens live there (they stay there when used from other goroutines). A
// thread whose namespace cannot be restored is never reused: it exits with
// its goroutine.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(n.name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s: %w", n.name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Close stops every process (newest first) and deletes every namespace,
// which removes their links. It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, nss, closers := l.procs, l.nss, l.closers
	l.mu.Unlock()
	for _, c := range closers {
		c()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop()
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		// Anything still running inside (started outside Start) dies too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if out, err := run(ctx, "ip", "netns", "pids", nss[i].name); err == nil {
			for _, pid := range strings.Fields(out) {
				_, _ = run(ctx, "kill", "-9", pid)
			}
		}
		cancel()
		if err := ipCmd("netns", "del", nss[i].name); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.RemoveAll(l.dir)
	return errors.Join(errs...)
}

// Eventually polls cond every interval until it returns nil or ctx ends,
// returning cond's last error in that case.
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
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
