package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/uvs-project/uvs/config"
)

// Result is the outcome of one check.
type Result struct {
	Up bool
	// Weight is MISC_CHECK's dynamic weight; -1 leaves the weight as it is.
	Weight int32
	Err    error
}

// Probe is one health check of a real server. Check must honour ctx and
// return within its own timeout; it may be called from any goroutine, but
// the Runner never runs one Probe twice at once.
type Probe interface {
	Check(ctx context.Context) Result
}

// Errors Probes return, for errors.Is.
var (
	ErrStatus   = errors.New("health: unexpected HTTP status")
	ErrDigest   = errors.New("health: MD5 digest mismatch")
	ErrRegex    = errors.New("health: body regex check failed")
	ErrExit     = errors.New("health: script exited non-zero")
	ErrTimeout  = errors.New("health: check timed out")
	ErrBadProbe = errors.New("health: invalid checker")
)

// Timing is the schedule of one real server's checks.
type Timing struct {
	DelayLoop        time.Duration // between checks; <= 0 means keepalived's 60s
	Retry            int           // failed tries retried before down; < 0 means 0
	DelayBeforeRetry time.Duration // between retries; < 0 means 1s
	Warmup           time.Duration // random delay in [0, Warmup] before the first check
	StartUp          bool          // start up (alpha off) or down (alpha on)
}

// TimingFor is the Timing of a resolved config.Checker.
func TimingFor(c *config.Checker) Timing {
	return Timing{
		DelayLoop:        c.DelayLoop,
		Retry:            c.Retry,
		DelayBeforeRetry: c.DelayBeforeRetry,
		Warmup:           c.Warmup,
		StartUp:          !c.Alpha,
	}
}

func (t Timing) normalized() Timing {
	if t.DelayLoop <= 0 {
		t.DelayLoop = 60 * time.Second
	}
	if t.Retry < 0 {
		t.Retry = 0
	}
	if t.DelayBeforeRetry < 0 {
		t.DelayBeforeRetry = time.Second
	}
	if t.Warmup < 0 {
		t.Warmup = 0
	}
	return t
}

// ServiceName formats a TCP service as keepalived logs it: [198.19.0.11]:tcp:80.
func ServiceName(addr netip.Addr, port uint16) string {
	return fmt.Sprintf("[%s]:tcp:%d", addr.Unmap(), port)
}

// NewProbe builds the probe of checker c of the real server rsAddr:rsPort.
func NewProbe(rsAddr netip.Addr, rsPort uint16, c *config.Checker) (Probe, error) {
	ip, port := c.ConnectIP, c.ConnectPort
	if !ip.IsValid() {
		ip = rsAddr
	}
	if port == 0 {
		port = rsPort
	}
	target := netip.AddrPortFrom(ip, port)
	var bind netip.AddrPort
	if c.BindTo.IsValid() {
		bind = netip.AddrPortFrom(c.BindTo, c.BindPort)
	}
	switch c.Kind {
	case "TCP_CHECK":
		if !ip.IsValid() || port == 0 {
			return nil, fmt.Errorf("%w: TCP_CHECK needs an address and a port", ErrBadProbe)
		}
		return &TCPProbe{Target: target, Bind: bind, Timeout: c.ConnectTimeout}, nil
	case "HTTP_GET", "SSL_GET":
		return newHTTPProbe(target, bind, c)
	case "MISC_CHECK":
		if c.MiscPath == "" {
			return nil, fmt.Errorf("%w: MISC_CHECK without misc_path", ErrBadProbe)
		}
		timeout := c.MiscTimeout
		if timeout <= 0 {
			timeout = c.DelayLoop
		}
		return &MiscProbe{Path: c.MiscPath, Timeout: timeout, Dynamic: c.MiscDynamic}, nil
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrBadProbe, c.Kind)
	}
}
