package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultPath is where uvsd listens unless told otherwise.
const DefaultPath = "/run/uvs/uvsd.sock"

// Handler answers requests. It is called from one goroutine per client.
type Handler interface {
	Handle(ctx context.Context, r *Request) *Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, r *Request) *Response

func (f HandlerFunc) Handle(ctx context.Context, r *Request) *Response { return f(ctx, r) }

// Listen creates the control socket at path (mode 0600, its directory
// created 0700 if missing), replacing a stale socket file.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another uvsd is listening", path)
		}
		_ = os.Remove(path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// Serve accepts clients until ctx is done.
func Serve(ctx context.Context, l *net.UnixListener, h Handler, log *slog.Logger) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("control accept: %w", err)
		}
		go serveConn(ctx, c, h, log)
	}
}

func serveConn(ctx context.Context, c *net.UnixConn, h Handler, log *slog.Logger) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		var resp *Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = &Response{Err: "bad request: " + err.Error()}
		} else {
			resp = h.Handle(ctx, &req)
		}
		if err := enc.Encode(resp); err != nil {
			log.Debug("control write", "err", err)
			return
		}
	}
}

// Client talks to uvsd.
type Client struct {
	c   net.Conn
	sc  *bufio.Scanner
	enc *json.Encoder
}

// Dial connects to uvsd's control socket.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to uvsd at %s: %w", path, err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	return &Client{c: c, sc: sc, enc: json.NewEncoder(c)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Do sends one request and waits for its response. A response carrying
// an error is returned as a Go error.
func (c *Client) Do(r *Request) (*Response, error) {
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.enc.Encode(r); err != nil {
		return nil, fmt.Errorf("uvsd request: %w", err)
	}
	if !c.sc.Scan() {
		err := c.sc.Err()
		if err == nil {
			err = errors.New("connection closed")
		}
		return nil, fmt.Errorf("uvsd response: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(c.sc.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("uvsd response: %w", err)
	}
	if resp.Err != "" {
		return &resp, errors.New(resp.Err)
	}
	return &resp, nil
}
