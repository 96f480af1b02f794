package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// TestPrivilegedReloadUnderLoad: five `uvsd reload`s (a weight and the
// scheduler changed and changed back, and one broken configuration that
// is refused) while clients keep opening new connections to the VIP: not
// one request fails, and a download started before the reloads completes
// intact.
func TestPrivilegedReloadUnderLoad(t *testing.T) {
	n := newNATLab(t, lab.NATOptions{})
	topo := n.topo
	d := startUVSD(t, n.l, topo.Director, n.conf(""), "--workers", "2")
	vip := topo.VIP.String()

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The long download, read here at a bounded pace (16 KiB every 10
	// ms, at most 1.6 MB/s: the 10 MB last six seconds at least) with a
	// small receive buffer, so that its packets cross the director during
	// every reload; once the reloads are done it is read at full speed.
	// (curl's --limit-rate is not a bound: it lets bursts through.)
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	var conn net.Conn
	if err := topo.Client.Do(func() error {
		var err error
		conn, err = dialer.DialContext(ctx, "tcp", net.JoinHostPort(vip, "80"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(90 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET /big HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", vip); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /big: %s", resp.Status)
	}
	type dlResult struct {
		sum string
		err error
	}
	var (
		dlBytes atomic.Int64
		fast    = make(chan struct{})
		dlDone  = make(chan dlResult, 1)
	)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		h := sha256.New()
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-fast:
			case <-tick.C:
			}
			k, err := io.ReadFull(resp.Body, buf)
			h.Write(buf[:k])
			dlBytes.Add(int64(k))
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				dlDone <- dlResult{sum: hex.EncodeToString(h.Sum(nil))}
				return
			}
			if err != nil {
				dlDone <- dlResult{err: fmt.Errorf("after %d bytes: %w", dlBytes.Load(), err)}
				return
			}
		}
	}()
	goFast := sync.OnceFunc(func() { close(fast) })
	defer goFast()
	if err := lab.Eventually(ctx, 10*time.Millisecond, func() error {
		if n := dlBytes.Load(); n < 256<<10 {
			return fmt.Errorf("%d bytes downloaded", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The load: loops of curl, each request on a new connection
	// (Connection: close) and given two seconds, until the reloads are
	// done; bounded by maxBatches in any case.
	const loops, batch, maxBatches = 4, 25, 80
	var (
		ok, failed atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		errMu      sync.Mutex
		errs       []string
	)
	url := "http://" + vip + "/"
	for range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"-sS", "--fail", "--max-time", "2", "-H", "Connection: close", "-w", "code=%{http_code}\n"}
			for range batch {
				args = append(args, url)
			}
			for range maxBatches {
				select {
				case <-stop:
					return
				default:
				}
				cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
				out, err := topo.Client.Run(cctx, "curl", args...)
				ccancel()
				good := min(strings.Count(out, "code=200\n"), batch)
				ok.Add(int64(good))
				failed.Add(int64(batch - good))
				if good != batch || err != nil {
					errMu.Lock()
					errs = append(errs, fmt.Sprintf("%d of %d failed (%v):\n%s", batch-good, batch, err, out))
					errMu.Unlock()
				}
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	// progress waits until want more requests succeeded than at from, so
	// that traffic runs before, between and after the reloads.
	progress := func(what string, from, want int64) {
		t.Helper()
		if err := lab.Eventually(ctx, 10*time.Millisecond, func() error {
			if got := ok.Load() - from; got < want {
				return fmt.Errorf("%d requests answered, %d failed", got, failed.Load())
			}
			return nil
		}); err != nil {
			t.Fatalf("load %s: %v", what, err)
		}
	}
	progress("before the reloads", 0, 50)
	dlStart := dlBytes.Load()

	base := n.conf("")
	rs0 := topo.RSIPs[0].String()
	weighted := func(c string, w int) string {
		return strings.Replace(c, "    real_server "+rs0+" 80 {\n        weight 1\n", fmt.Sprintf("    real_server %s 80 {\n        weight %d\n", rs0, w), 1)
	}
	scheduled := func(c, algo string) string {
		return strings.Replace(c, "lb_algo rr\n    lb_kind NAT\n    protocol TCP", "lb_algo "+algo+"\n    lb_kind NAT\n    protocol TCP", 1)
	}
	// listed checks the TCP service's scheduler and rs0's weight.
	listed := func(listing, algo string, w int) error {
		if !strings.Contains(listing, vip+":80 "+algo+" ") && !strings.Contains(listing, vip+":80 "+algo+"\n") {
			return fmt.Errorf("TCP service is not %s", algo)
		}
		for _, line := range strings.Split(listing, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[0] == "->" && f[1] == rs0+":80" {
				if f[3] != fmt.Sprint(w) {
					return fmt.Errorf("%s:80 has weight %s, want %d", rs0, f[3], w)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s:80", rs0)
	}
	steps := []struct {
		name, conf, algo string
		weight           int
		broken           bool
	}{
		{"weight 3", weighted(base, 3), "rr", 3, false},
		{"wrr", scheduled(weighted(base, 3), "wrr"), "wrr", 3, false},
		{"broken", scheduled(weighted(base, 3), "nosuch"), "wrr", 3, true},
		{"weight 1", scheduled(base, "wrr"), "wrr", 1, false},
		{"rr again", base, "rr", 1, false},
	}
	prev := base
	for i, s := range steps {
		if s.conf == prev {
			t.Fatalf("step %s: the configuration edit did not apply", s.name)
		}
		prev = s.conf
		// -S: the rules without the connection counts, which move
		// under load.
		before := d.mustAdm("-S", "-n")
		out, err := d.reload(s.conf)
		if s.broken {
			if err == nil || !strings.Contains(out, `keepalived.conf:3: lb_algo: unknown scheduler "nosuch"`) {
				t.Fatalf("broken reload: err %v, output %q; want a refusal with file:line", err, out)
			}
			if after := d.mustAdm("-S", "-n"); after != before {
				t.Fatalf("a refused reload changed the services:\nbefore\n%s\nafter\n%s", before, after)
			}
		} else if err != nil {
			t.Fatalf("reload %d (%s): %v %s", i+1, s.name, err, out)
		}
		if err := listed(d.mustAdm("-L", "-n"), s.algo, s.weight); err != nil {
			t.Fatalf("after reload %d (%s): %v\n%s", i+1, s.name, err, d.mustAdm("-L", "-n"))
		}
		progress("after reload "+s.name, ok.Load(), 20)
	}
	// The download ran across the last reload and is not over.
	select {
	case r := <-dlDone:
		t.Fatalf("the download ended before the reloads were done (%v): the test proves nothing", r.err)
	default:
	}
	if n := dlBytes.Load(); n <= dlStart {
		t.Fatalf("the download did not move during the reloads (%d bytes, %d before)", n, dlStart)
	}
	stopLoad()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across the reloads:\n%s", f, f+ok.Load(), strings.Join(errs, "\n"))
	}
	t.Logf("%d requests, none failed, across %d reloads", ok.Load(), len(steps))
	goFast()
	r := <-dlDone
	if r.err != nil {
		t.Fatalf("download across the reloads: %v", r.err)
	}
	if r.sum != lab.BigSHA256() {
		t.Fatal("download across the reloads: sha256 mismatch")
	}
}
