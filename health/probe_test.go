package health

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
)

func addrPort(t *testing.T, s string) (netip.Addr, uint16) {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Addr(), ap.Port()
}

func mustProbe(t *testing.T, addr netip.Addr, port uint16, c *config.Checker) Probe {
	t.Helper()
	p, err := NewProbe(addr, port, c)
	if err != nil {
		t.Fatalf("NewProbe: %v", err)
	}
	return p
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr, port := addrPort(t, ln.Addr().String())

	// A closed port: listen, note it, close.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort := addrPort(t, ln2.Addr().String())
	ln2.Close()

	loop := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		rs   uint16
		c    config.Checker
		want bool
	}{
		{"open, rs defaults", port, config.Checker{Kind: "TCP_CHECK", ConnectTimeout: time.Second}, true},
		{"open via connect_port", 1, config.Checker{Kind: "TCP_CHECK", ConnectPort: port, ConnectTimeout: time.Second}, true},
		{"open with bindto", port, config.Checker{Kind: "TCP_CHECK", BindTo: loop, ConnectTimeout: time.Second}, true},
		{"closed", closedPort, config.Checker{Kind: "TCP_CHECK", ConnectTimeout: time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProbe(t, addr, tt.rs, &tt.c)
			res := p.Check(context.Background())
			if res.Up != tt.want {
				t.Fatalf("Up = %v (err %v), want %v", res.Up, res.Err, tt.want)
			}
			if res.Weight != -1 {
				t.Errorf("Weight = %d, want -1", res.Weight)
			}
		})
	}
	if got, want := probeName(mustProbe(t, addr, port, &tests[0].c)), "TCP connection to "+ServiceName(addr, port); got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
}

func TestNewProbeErrors(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	for _, c := range []config.Checker{
		{Kind: "DNS_CHECK"},
		{Kind: "HTTP_GET"},
		{Kind: "MISC_CHECK"},
		{Kind: "HTTP_GET", URLs: []config.URL{{Path: "/", Regex: "("}}},
	} {
		if _, err := NewProbe(a, 80, &c); !errors.Is(err, ErrBadProbe) {
			t.Errorf("%+v: err = %v, want ErrBadProbe", c, err)
		}
	}
}

func TestHTTPProbe(t *testing.T) {
	const body = "hello uvs\n"
	sum := md5.Sum([]byte(body))
	digest := hex.EncodeToString(sum[:])

	var mu sync.Mutex
	var hosts []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(body))
		case "/created":
			w.WriteHeader(201)
		case "/missing":
			http.NotFound(w, r)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		}
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(handler)
	defer tlsSrv.Close()

	tests := []struct {
		name string
		tls  bool
		urls []config.URL
		vh   string
		want bool
		err  error
	}{
		{name: "200 default codes", urls: []config.URL{{Path: "/ok"}}, want: true},
		{name: "201 default codes", urls: []config.URL{{Path: "/created"}}, want: true},
		{name: "404 default codes", urls: []config.URL{{Path: "/missing"}}, err: ErrStatus},
		{name: "404 expected", urls: []config.URL{{Path: "/missing", StatusCodes: []config.CodeRange{{Lo: 404, Hi: 404}}}}, want: true},
		{name: "200 not in list", urls: []config.URL{{Path: "/ok", StatusCodes: []config.CodeRange{{Lo: 300, Hi: 399}}}}, err: ErrStatus},
		{name: "redirect not followed", urls: []config.URL{{Path: "/redirect", StatusCodes: []config.CodeRange{{Lo: 302, Hi: 302}}}}, want: true},
		{name: "digest match", urls: []config.URL{{Path: "/ok", Digest: digest}}, want: true},
		{name: "digest mismatch", urls: []config.URL{{Path: "/ok", Digest: "00000000000000000000000000000000"}}, err: ErrDigest},
		{name: "all urls must pass", urls: []config.URL{{Path: "/ok"}, {Path: "/missing"}}, err: ErrStatus},
		{name: "regex", urls: []config.URL{{Path: "/ok", Regex: "uv[s]"}}, want: true},
		{name: "regex no match", urls: []config.URL{{Path: "/ok", Regex: "uv[s]", RegexNoMatch: true}}, err: ErrRegex},
		{name: "ssl digest", tls: true, urls: []config.URL{{Path: "/ok", Digest: digest}}, want: true},
		{name: "ssl 404", tls: true, urls: []config.URL{{Path: "/missing"}}, err: ErrStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, kind := srv, "HTTP_GET"
			if tt.tls {
				s, kind = tlsSrv, "SSL_GET"
			}
			addr, port := addrPort(t, s.Listener.Addr().String())
			p := mustProbe(t, addr, port, &config.Checker{Kind: kind, URLs: tt.urls, ConnectTimeout: 2 * time.Second})
			res := p.Check(context.Background())
			if res.Up != tt.want {
				t.Fatalf("Up = %v (err %v), want %v", res.Up, res.Err, tt.want)
			}
			if tt.err != nil && !errors.Is(res.Err, tt.err) {
				t.Errorf("err = %v, want %v", res.Err, tt.err)
			}
		})
	}

	t.Run("virtualhost", func(t *testing.T) {
		mu.Lock()
		hosts = nil
		mu.Unlock()
		addr, port := addrPort(t, srv.Listener.Addr().String())
		p := mustProbe(t, addr, port, &config.Checker{
			Kind:           "HTTP_GET",
			Virtualhost:    "checker.example",
			ConnectTimeout: time.Second,
			URLs:           []config.URL{{Path: "/ok", Virtualhost: "www.example"}, {Path: "/ok"}},
		})
		if res := p.Check(context.Background()); !res.Up {
			t.Fatalf("down: %v", res.Err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hosts) != 2 || hosts[0] != "www.example" || hosts[1] != "checker.example" {
			t.Errorf("Host headers = %q, want [www.example checker.example]", hosts)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// A listener that accepts and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr, port := addrPort(t, ln.Addr().String())
		p := mustProbe(t, addr, port, &config.Checker{Kind: "HTTP_GET", ConnectTimeout: 50 * time.Millisecond, URLs: []config.URL{{Path: "/"}}})
		start := time.Now()
		if res := p.Check(context.Background()); res.Up {
			t.Fatal("up, want down")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v, want about 50ms", d)
		}
	})
}

func TestMiscProbe(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		dynamic bool
		up      bool
		weight  int32
		err     error
	}{
		{name: "exit 0", path: "exit 0", up: true, weight: -1},
		{name: "exit 1", path: "exit 1", weight: -1, err: ErrExit},
		{name: "exit 5", path: "exit 5", weight: -1, err: ErrExit},
		{name: "dynamic exit 0", path: "exit 0", dynamic: true, up: true, weight: -1},
		{name: "dynamic exit 1", path: "exit 1", dynamic: true, weight: -1, err: ErrExit},
		{name: "dynamic exit 2", path: "exit 2", dynamic: true, up: true, weight: 0},
		{name: "dynamic exit 5", path: "exit 5", dynamic: true, up: true, weight: 3},
		{name: "dynamic exit 255", path: "exit 255", dynamic: true, up: true, weight: 253},
		{name: "timeout", path: "sleep 10", weight: -1, err: ErrTimeout},
		{name: "timeout kills children", path: "sleep 10 & sleep 10; wait", weight: -1, err: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustProbe(t, netip.MustParseAddr("192.0.2.1"), 80, &config.Checker{
				Kind: "MISC_CHECK", MiscPath: tt.path, MiscTimeout: 100 * time.Millisecond, MiscDynamic: tt.dynamic,
			})
			start := time.Now()
			res := p.Check(context.Background())
			if res.Up != tt.up || res.Weight != tt.weight {
				t.Fatalf("got up=%v weight=%d (err %v), want up=%v weight=%d", res.Up, res.Weight, res.Err, tt.up, tt.weight)
			}
			if tt.err != nil && !errors.Is(res.Err, tt.err) {
				t.Errorf("err = %v, want %v", res.Err, tt.err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
