package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 2 * time.Second

// outputLimit bounds the output a Proc keeps: past it, the oldest half is
// dropped, so a chatty daemon cannot grow the test's memory without end.
const outputLimit = 4 << 20

// Proc is a background process in a namespace, its stdout and stderr
// kept for diagnostics.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed

	mu      sync.Mutex
	out     []byte
	dropped int
}

// procWriter appends to a Proc's output under its lock.
type procWriter struct{ p *Proc }

func (w procWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, b...)
	if len(p.out) > outputLimit {
		cut := len(p.out) - outputLimit/2
		p.dropped += cut
		p.out = append(p.out[:0], p.out[cut:]...)
	}
	return len(b), nil
}

// Start starts name with args inside the namespace, in its own process
// group, with its output captured (Output). Lab.Close stops it; it is
// also killed if the test process dies.
func (n *NS) Start(name string, args ...string) (*Proc, error) {
	p := &Proc{done: make(chan struct{})}
	// ip netns exec execs the command itself: the pid is the command's.
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...)
	p.cmd.Stdout = procWriter{p}
	p.cmd.Stderr = procWriter{p}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// A descendant that left the group must not hold Wait (and Stop)
	// forever through the output pipes.
	p.cmd.WaitDelay = stopGrace
	// Registering and starting under the lab's lock means Close either
	// sees the process or refuses to start it.
	var serr error
	err := n.lab.register(func(l *Lab) {
		if serr = p.cmd.Start(); serr == nil {
			l.procs = append(l.procs, p)
		}
	})
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, n.name, serr)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Output is what the process has written so far, stdout and stderr
// interleaved; very long output keeps only its most recent part.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropped > 0 {
		return fmt.Sprintf("[... %d bytes dropped ...]\n%s", p.dropped, p.out)
	}
	return string(p.out)
}

// Pid is the process ID.
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

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to end and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process's group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Stop ends the process's group: SIGTERM, then SIGKILL after 2 s. It
// returns once the process has been reaped, and is safe to call again or
// concurrently. Its error says only whether stopping failed, not how the
// process exited (Wait has that).
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}
