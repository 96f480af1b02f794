// Package nsexec runs work inside a network namespace captured earlier:
// a function on an OS thread switched into it, or the nft command, which
// a child process runs in its forking thread's namespace. uvsd's nft
// tables (hostlocal's guard, nfqueue's rules) and the test labs share it.
package nsexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Do runs fn on a fresh OS thread switched into ns and returns its
// error. Sockets fn opens belong to ns for their whole life, whichever
// goroutine uses them later; goroutines fn starts do not run in ns. The
// thread goes back to its original namespace afterwards; if that fails
// it is never unlocked, so the runtime retires it rather than reuse a
// thread in the wrong namespace.
func Do(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// From here on, an early return without UnlockOSThread
		// retires the thread: the safe default.
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// NftTimeout bounds one nft invocation.
const NftTimeout = 10 * time.Second

// tableName is an nft identifier, as the tables here are named.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ValidTable reports whether name can name an nft table.
func ValidTable(name string) bool { return tableName.MatchString(name) }

// ReplaceSet returns the nft script that empties set of table (in family:
// ip, netdev) and adds elems, so that `nft -f -` replaces the set's
// contents in one transaction.
func ReplaceSet(family, table, set string, elems []string) string {
	script := fmt.Sprintf("flush set %s %s %s\n", family, table, set)
	if len(elems) > 0 {
		script += fmt.Sprintf("add element %s %s %s { %s }\n", family, table, set, strings.Join(elems, ", "))
	}
	return script
}

// Nft runs the nft command in the network namespace that was the calling
// thread's at NewNft, one call at a time. It is safe for concurrent use.
type Nft struct {
	bin       string
	errClosed error

	mu     sync.Mutex
	ns     netns.NsHandle
	closed bool
}

// NewNft captures the calling thread's namespace and finds nft in PATH.
// After Close, Run returns errClosed.
func NewNft(errClosed error) (*Nft, error) {
	bin, err := exec.LookPath("nft")
	if err != nil {
		return nil, err
	}
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	return &Nft{bin: bin, errClosed: errClosed, ns: h}, nil
}

// Run runs nft with args, script on its stdin when not empty, and
// returns its output.
func (n *Nft) Run(script string, args ...string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", n.errClosed
	}
	return n.runLocked(script, args...)
}

// In runs fn in the namespace (a netlink socket of its own, say), with
// Run's calls held off.
func (n *Nft) In(fn func() error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return n.errClosed
	}
	return Do(n.ns, fn)
}

// Close runs a last nft command (args; none: no command), then releases
// the namespace. Later calls do nothing and return nil.
func (n *Nft) Close(args ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	var err error
	if len(args) > 0 {
		_, err = n.runLocked("", args...)
	}
	n.closed = true
	n.ns.Close()
	return err
}

func (n *Nft) runLocked(script string, args ...string) (string, error) {
	var out []byte
	err := Do(n.ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), NftTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, n.bin, args...)
		if script != "" {
			cmd.Stdin = strings.NewReader(script)
		}
		var err error
		if out, err = cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	})
	return string(out), err
}
