package health

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// TCPProbe is TCP_CHECK: up when a TCP connection to Target completes
// within Timeout. The connection is closed at once.
type TCPProbe struct {
	Target  netip.AddrPort
	Bind    netip.AddrPort // source address (bindto, bind_port); zero: any
	Timeout time.Duration  // connect_timeout; <= 0: none beyond ctx
}

// String is the probe as keepalived names it in its log.
func (p *TCPProbe) String() string {
	return "TCP connection to " + ServiceName(p.Target.Addr(), p.Target.Port())
}

// Check implements Probe.
func (p *TCPProbe) Check(ctx context.Context) Result {
	c, err := dialer(p.Bind, p.Timeout).DialContext(ctx, "tcp", p.Target.String())
	if err != nil {
		return Result{Weight: -1, Err: err}
	}
	c.Close()
	return Result{Up: true, Weight: -1}
}

func dialer(bind netip.AddrPort, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if bind.Addr().IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(bind)
	}
	return d
}

var _ fmt.Stringer = (*TCPProbe)(nil)
