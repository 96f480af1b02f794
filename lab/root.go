package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// skipMessage is shown when a test cannot build namespaces.
const skipMessage = "needs root for network namespaces; run as root or via make test"

var (
	probeOnce sync.Once
	probeErr  error
)

// probeNetns checks once per process that `ip netns add` works here: a
// root inside a container without CAP_SYS_ADMIN is still refused.
func probeNetns() error {
	probeOnce.Do(func() {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			probeErr = err
			return
		}
		name := "uvs" + hex.EncodeToString(b) + "-probe"
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		if _, probeErr = run(ctx, "ip", "netns", "add", name); probeErr == nil {
			_, probeErr = run(ctx, "ip", "netns", "del", name)
		}
	})
	return probeErr
}

// verdict is what RequireRoot does: nothing, skip, or fail.
type verdict int

const (
	proceed verdict = iota
	skip
	fail
)

// decide is RequireRoot's logic without its effects: a missing privilege
// (not root, or namespaces refused) skips, or fails under CI=true; any
// other probe failure fails.
func decide(euid int, ci string, probe func() error) (verdict, string) {
	if euid != 0 {
		return missing(ci, skipMessage)
	}
	if err := probe(); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return missing(ci, skipMessage+": "+err.Error())
		}
		return fail, "cannot create a network namespace: " + err.Error()
	}
	return proceed, ""
}

// missing is the verdict on something a test needs and the machine
// lacks: skip, or fail under CI=true.
func missing(ci, msg string) (verdict, string) {
	if ci == "true" {
		return fail, msg + " (CI=true: failing instead of skipping)"
	}
	return skip, msg
}

// RequireRoot skips t unless the process can create network namespaces
// (root, and `ip netns add` allowed), with the message "needs root for
// network namespaces; run as root or via make test". Under CI=true it
// fails instead: CI must never hide these tests.
func RequireRoot(t testing.TB) {
	t.Helper()
	switch v, msg := decide(os.Geteuid(), os.Getenv("CI"), probeNetns); v {
	case skip:
		t.Skip(msg)
	case fail:
		t.Fatal(msg)
	}
}

// RequireCommands skips t unless every command in names is in PATH
// (make deps installs them). Under CI=true it fails instead, as
// RequireRoot does.
func RequireCommands(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			v, msg := missing(os.Getenv("CI"), fmt.Sprintf("needs the %s command (make deps): %v", name, err))
			if v == fail {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// NewT creates a lab for a test after RequireRoot, and closes it when the
// test ends, failed or not; a failing Close is reported as an error.
func NewT(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	l, err := New(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing lab %s: %v", l.prefix, err)
		}
	})
	return l
}
