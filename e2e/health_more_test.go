package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// hit is one request of the traffic stream.
type hit struct {
	start, end time.Time
	server     string // the answer's word; "" when the request failed
	err        error
}

// traffic is a stream of short HTTP requests from the client namespace,
// each on a new connection, one every few milliseconds, for at most 30 s.
type traffic struct {
	mu   sync.Mutex
	hits []hit
	stop chan struct{}
	done chan error
}

func startTraffic(ns *lab.NS, vip string) *traffic {
	tr := &traffic{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		tr.done <- ns.Do(func() error {
			end := time.Now().Add(30 * time.Second)
			for time.Now().Before(end) {
				select {
				case <-tr.stop:
					return nil
				default:
				}
				h := hit{start: time.Now()}
				h.server, h.err = getOnce(vip)
				h.end = time.Now()
				tr.mu.Lock()
				tr.hits = append(tr.hits, h)
				tr.mu.Unlock()
				time.Sleep(10 * time.Millisecond) // pacing, not synchronisation
			}
			return nil
		})
	}()
	return tr
}

// getOnce is curl --max-time 1 -H 'Connection: close' http://vip/: the
// word "/" answers, or why there is none.
func getOnce(vip string) (string, error) {
	c, err := net.DialTimeout("tcp4", vip+":80", time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: uvs\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	head, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok || !strings.HasPrefix(head, "HTTP/1.1 200 ") {
		return "", fmt.Errorf("bad answer %q", b)
	}
	return strings.TrimSpace(body), nil
}

func (tr *traffic) snapshot() []hit {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]hit(nil), tr.hits...)
}

// finish stops the stream and returns every request made.
func (tr *traffic) finish(t *testing.T) []hit {
	t.Helper()
	close(tr.stop)
	if err := <-tr.done; err != nil {
		t.Fatal(err)
	}
	return tr.snapshot()
}

// answeredBy waits until a request started after since is answered by
// server.
func (tr *traffic) answeredBy(t *testing.T, server string, since time.Time, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
		for _, h := range tr.snapshot() {
			if h.server == server && h.start.After(since) {
				return nil
			}
		}
		return fmt.Errorf("no answer from %s since %v", server, since.Format("15:04:05.000"))
	}); err != nil {
		t.Fatal(err)
	}
}

// failuresAfter are the requests started in [from, to) that failed or
// were answered by another server than only.
func failuresAfter(hits []hit, from, to time.Time, only string) []string {
	var bad []string
	for _, h := range hits {
		if h.start.Before(from) || !h.start.Before(to) {
			continue
		}
		if h.err != nil || h.server != only {
			bad = append(bad, fmt.Sprintf("%s (+%v): %q %v", h.start.Format("15:04:05.000"), h.start.Sub(from).Round(time.Millisecond), h.server, h.err))
		}
	}
	return bad
}

// TestPrivilegedHealthUnderTraffic: under a continuous stream of short
// requests, a stopped nginx leaves the pool within delay_loop × (retry+1)
// plus a second and no request started after that fails; started again,
// it returns to the pool and gets requests. A reload of the same
// configuration while it is stopped keeps it out, and no request fails
// across the reload.
func TestPrivilegedHealthUnderTraffic(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	vip := n.topo.VIP.String()
	// TCP_CHECK every second, one retry a second later.
	conf := tcpCheckedService(n.topo.VIP, "1", "1", n.topo.RSIPs...)
	d := startUVSD(t, n.l, n.topo.Director, conf, "--workers", "1")
	rs1 := fmt.Sprintf("  -> %v:80", n.topo.RSIPs[0])
	listed := func() bool { return strings.Contains(d.mustAdm("-L", "-n", "-t", vip+":80"), rs1) }
	// waitListed polls the listing until rs1 is (or is not) in it and
	// returns when that was first seen.
	waitListed := func(want bool, within time.Duration) time.Time {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		var at time.Time
		if err := lab.Eventually(ctx, 20*time.Millisecond, func() error {
			if listed() != want {
				return fmt.Errorf("rs1 listed %v", !want)
			}
			at = time.Now()
			return nil
		}); err != nil {
			t.Fatalf("rs1 listed %v not seen within %v: %v", want, within, err)
		}
		return at
	}
	if !listed() {
		t.Fatal("rs1 not in the pool at start")
	}

	tr := startTraffic(n.topo.Client, vip)
	begin := time.Now()
	tr.answeredBy(t, "rs1", begin, 5*time.Second)
	tr.answeredBy(t, "rs2", begin, 5*time.Second)

	// delay_loop × (retry+1) + 1 s.
	const leaveWithin = 1*time.Second*2 + time.Second
	if err := n.nginx[0].Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	out1 := waitListed(false, leaveWithin)
	t.Logf("rs1 left the pool %v after nginx stopped", out1.Sub(stopped).Round(time.Millisecond))
	// Let the stream run on rs2 alone for a while.
	tr.answeredBy(t, "rs2", out1.Add(time.Second), 5*time.Second)

	restart := time.Now()
	if err := n.nginx[0].Start(); err != nil {
		t.Fatal(err)
	}
	back := waitListed(true, 5*time.Second)
	tr.answeredBy(t, "rs1", back, 5*time.Second)
	hits := tr.snapshot()
	if bad := failuresAfter(hits, out1, restart, "rs2"); len(bad) > 0 {
		t.Errorf("%d requests failed or went to rs1 after it left the pool:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	for _, h := range hits {
		if !h.start.Before(restart) && h.err != nil {
			t.Errorf("request at %s, with rs1 starting again, failed: %v", h.start.Format("15:04:05.000"), h.err)
		}
	}

	// Down again, then a reload of the same configuration: rs1 stays out.
	if err := n.nginx[0].Stop(); err != nil {
		t.Fatal(err)
	}
	out2 := waitListed(false, leaveWithin)
	if out, err := d.reload(conf); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	reloaded := time.Now()
	// Two check rounds after the reload: out the whole time.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := reloaded.Add(2500 * time.Millisecond); time.Now().Before(deadline); <-tick.C {
		if listed() {
			t.Fatalf("rs1 back in the pool %v after the reload, while its nginx is stopped", time.Since(reloaded).Round(time.Millisecond))
		}
	}
	end := time.Now()
	hits = tr.finish(t)
	if bad := failuresAfter(hits, out2, end, "rs2"); len(bad) > 0 {
		t.Errorf("%d requests failed or went to rs1 across the reload:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	t.Logf("%d requests in all", len(hits))
}
