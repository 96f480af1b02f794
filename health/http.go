package health

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/uvs-project/uvs/config"
)

// maxRegexBody bounds the body kept in memory for a regex check.
const maxRegexBody = 1 << 20

// HTTPProbe is HTTP_GET and SSL_GET: each URL is fetched in turn on a new
// connection, and the server is up when every one answers with an
// expected status and, where set, the expected MD5 digest and regex.
// SSL_GET does not verify the server's certificate, as keepalived does not.
// Build it with NewProbe.
type HTTPProbe struct {
	Target  netip.AddrPort
	TLS     bool
	Timeout time.Duration // connect_timeout, for each URL's whole exchange
	URLs    []HTTPURL

	client *http.Client
}

// HTTPURL is one url block, resolved.
type HTTPURL struct {
	Path         string
	Host         string             // virtualhost, sent as Host; "" for the target
	Digest       string             // lower-case hex MD5 of the body; "" unchecked
	Codes        []config.CodeRange // expected status codes; empty: 200-299
	Regex        *regexp.Regexp     // nil: unchecked
	RegexNoMatch bool               // up when Regex does not match
}

func newHTTPProbe(target, bind netip.AddrPort, c *config.Checker) (*HTTPProbe, error) {
	if !target.Addr().IsValid() || target.Port() == 0 {
		return nil, fmt.Errorf("%w: %s needs an address and a port", ErrBadProbe, c.Kind)
	}
	if len(c.URLs) == 0 {
		return nil, fmt.Errorf("%w: %s without url", ErrBadProbe, c.Kind)
	}
	p := &HTTPProbe{Target: target, TLS: c.Kind == "SSL_GET", Timeout: c.ConnectTimeout}
	for _, u := range c.URLs {
		hu := HTTPURL{
			Path:         u.Path,
			Host:         u.Virtualhost,
			Digest:       strings.ToLower(u.Digest),
			Codes:        u.StatusCodes,
			RegexNoMatch: u.RegexNoMatch,
		}
		if hu.Host == "" {
			hu.Host = c.Virtualhost
		}
		if u.Regex != "" {
			re, err := regexp.Compile(u.Regex)
			if err != nil {
				return nil, fmt.Errorf("%w: url %s: %w", ErrBadProbe, u.Path, err)
			}
			hu.Regex = re
		}
		p.URLs = append(p.URLs, hu)
	}
	tr := &http.Transport{
		Proxy:              nil,
		DisableKeepAlives:  true,
		DisableCompression: true, // the digest is of the body as sent
		DialContext:        dialer(bind, c.ConnectTimeout).DialContext,
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // keepalived does not verify
	}
	if c.EnableSNI {
		sni := c.SNIName
		if sni == "" && len(p.URLs) > 0 {
			sni = p.URLs[0].Host
		}
		tr.TLSClientConfig.ServerName = sni
	}
	p.client = &http.Client{
		Transport: tr,
		// keepalived checks the answer it gets, redirects included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p, nil
}

// String is the probe as keepalived names it in its log.
func (p *HTTPProbe) String() string {
	kind := "HTTP_CHECK"
	if p.TLS {
		kind = "SSL_CHECK"
	}
	return kind + " on service " + ServiceName(p.Target.Addr(), p.Target.Port())
}

// Check implements Probe.
func (p *HTTPProbe) Check(ctx context.Context) Result {
	if p.client == nil {
		return Result{Weight: -1, Err: fmt.Errorf("%w: HTTPProbe not built by NewProbe", ErrBadProbe)}
	}
	for i := range p.URLs {
		if err := p.get(ctx, &p.URLs[i]); err != nil {
			return Result{Weight: -1, Err: fmt.Errorf("url(%d) %s: %w", i+1, p.URLs[i].Path, err)}
		}
	}
	return Result{Up: true, Weight: -1}
}

func (p *HTTPProbe) get(ctx context.Context, u *HTTPURL) error {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	scheme := "http"
	if p.TLS {
		scheme = "https"
	}
	path := u.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	host := net.JoinHostPort(p.Target.Addr().Unmap().String(), fmt.Sprint(p.Target.Port()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+path, nil)
	if err != nil {
		return err
	}
	if u.Host != "" {
		req.Host = u.Host
	}
	req.Header.Set("User-Agent", "KeepAliveClient")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !statusOK(resp.StatusCode, u.Codes) {
		return fmt.Errorf("%w: %d", ErrStatus, resp.StatusCode)
	}
	if u.Digest == "" && u.Regex == nil {
		return nil
	}
	var sum hash.Hash
	var w []io.Writer
	if u.Digest != "" {
		sum = md5.New()
		w = append(w, sum)
	}
	var body strings.Builder
	if u.Regex != nil {
		w = append(w, &limitedBuilder{&body, maxRegexBody})
	}
	if _, err := io.Copy(io.MultiWriter(w...), resp.Body); err != nil {
		return err
	}
	if sum != nil {
		if got := hex.EncodeToString(sum.Sum(nil)); got != u.Digest {
			return fmt.Errorf("%w: got %s, want %s", ErrDigest, got, u.Digest)
		}
	}
	if u.Regex != nil && u.Regex.MatchString(body.String()) == u.RegexNoMatch {
		return ErrRegex
	}
	return nil
}

func statusOK(code int, codes []config.CodeRange) bool {
	if len(codes) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range codes {
		if code >= int(r.Lo) && code <= int(r.Hi) {
			return true
		}
	}
	return false
}

// limitedBuilder keeps the first n bytes written and drops the rest.
type limitedBuilder struct {
	b *strings.Builder
	n int
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
