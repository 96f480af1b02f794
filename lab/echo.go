package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// maxEchoErrors ends a UDP echo that only gets errors, rather than spin.
const maxEchoErrors = 1000

// StartUDPEcho serves UDP on port (all addresses) inside the namespace,
// answering each datagram with the namespace's short name, ":" and the
// payload (rs1 answers "hi" with "rs1:hi"). The socket is made in the
// namespace and served from an ordinary goroutine. stop closes it and
// waits for the server to end; Lab.Close stops it too.
func (n *NS) StartUDPEcho(port int) (stop func(), err error) {
	var c *net.UDPConn
	err = n.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("udp echo in %s: %w", n.name, err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() { c.Close() })
		<-done
	}
	if err := n.lab.register(func(l *Lab) { l.closers = append(l.closers, stop) }); err != nil {
		c.Close()
		return nil, err
	}
	// Answer from the address the datagram was sent to (IP_PKTINFO), as
	// UDP servers behind a DR or TUN director must: the VIP is on lo,
	// and the route to the client would pick eth0's address.
	pc := ipv4.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("udp echo in %s: %w", n.name, err)
	}
	prefix := []byte(n.Short() + ":")
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		out := make([]byte, 0, len(prefix)+len(buf))
		for fails := 0; fails < maxEchoErrors; {
			k, cm, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				fails++ // e.g. an ICMP error surfaced on the socket
				continue
			}
			fails = 0
			out = append(append(out[:0], prefix...), buf[:k]...)
			var reply *ipv4.ControlMessage
			if cm != nil && cm.Dst != nil && !cm.Dst.IsMulticast() {
				reply = &ipv4.ControlMessage{Src: cm.Dst}
			}
			_, _ = pc.WriteTo(out, reply, from)
		}
	}()
	return stop, nil
}

// udpAskTimeout bounds UDPAsk's exchange.
const udpAskTimeout = 3 * time.Second

// UDPAsk sends payload to to from a fresh socket in the namespace (a new
// source port, so a new connection for a load balancer) and returns the
// first datagram that comes back, waiting at most 3 s. A failed read's
// error wraps the socket's, so that errors.Is sees, say,
// syscall.ECONNREFUSED for an ICMP port unreachable.
func (n *NS) UDPAsk(to netip.AddrPort, payload string) (string, error) {
	var reply string
	err := n.Do(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(udpAskTimeout))
		if _, err := c.Write([]byte(payload)); err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		k, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("reply from %v: %w", to, err)
		}
		reply = string(buf[:k])
		return nil
	})
	return reply, err
}
