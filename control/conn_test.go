package control

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestRoundTrip: a request goes over the socket and comes back answered;
// the socket is private to its owner; an error travels as an error.
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "uvsd.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := HandlerFunc(func(_ context.Context, r *Request) *Response {
		if r.Op == OpInfo {
			return &Response{Info: &Info{Version: "1.2.1", ConnSize: 4096}}
		}
		return &Response{Err: "unknown op " + r.Op}
	})
	go Serve(ctx, l, h, slog.Default())
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Do(&Request{Op: OpInfo})
	if err != nil || resp.Info == nil || resp.Info.ConnSize != 4096 {
		t.Fatalf("info: %+v, %v", resp, err)
	}
	if _, err := c.Do(&Request{Op: "nope"}); err == nil || err.Error() != "unknown op nope" {
		t.Fatalf("error response: %v", err)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("a second daemon could take the live socket")
	}
}
