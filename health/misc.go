package health

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// MiscProbe is MISC_CHECK: Path is run with /bin/sh -c and the server is
// up when it exits 0 within Timeout. With Dynamic, exit codes 2..255 are
// also up and set the weight to code-2; exit 1 is down. On timeout the
// script's whole process group is killed.
type MiscProbe struct {
	Path    string
	Timeout time.Duration // misc_timeout; <= 0: none beyond ctx
	Dynamic bool          // misc_dynamic
}

// String is the probe as keepalived names it in its log.
func (p *MiscProbe) String() string { return "Misc check for [" + p.Path + "]" }

// Check implements Probe.
func (p *MiscProbe) Check(ctx context.Context) Result {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", p.Path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return Result{Weight: -1, Err: fmt.Errorf("%w: %w", ErrTimeout, context.Cause(ctx))}
	}
	if err == nil {
		return Result{Up: true, Weight: -1}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return Result{Weight: -1, Err: err}
	}
	code := ee.ExitCode()
	if p.Dynamic && code >= 2 && code <= 255 {
		return Result{Up: true, Weight: int32(code - 2)}
	}
	return Result{Weight: -1, Err: fmt.Errorf("%w: exit status %d", ErrExit, code)}
}
