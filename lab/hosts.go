package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// NATOptions shape NATTopology.
type NATOptions struct {
	RealServers int        // default 2
	Gateway     netip.Addr // the real servers' default gateway; default the director's 198.19.0.1
}

// NAT is the two-armed LVS-NAT lab: client — director — switch — real
// servers. Addresses come from the RFC 2544 benchmarking range.
type NAT struct {
	Client, Director, Switch *NS
	RS                       []*NS

	ClientIP, DirClientIP, DirServerIP, VIP, GatewayIP netip.Addr
	RSIPs                                              []netip.Addr
}

// NATTopology builds the NAT lab. The client (c0, 198.18.0.1/24) faces the
// director's d0 (198.18.0.2/24); the VIP 198.18.0.100 is on that link but
// on no interface. The director's d1 (198.19.0.1/24) joins bridge br0 in
// the switch namespace with every real server's eth0 (198.19.0.1N/24).
// The director does not forward (ip_forward=0).
func NATTopology(l *Lab, opts NATOptions) (*NAT, error) {
	if opts.RealServers == 0 {
		opts.RealServers = 2
	}
	t := &NAT{
		ClientIP:    netip.MustParseAddr("198.18.0.1"),
		DirClientIP: netip.MustParseAddr("198.18.0.2"),
		DirServerIP: netip.MustParseAddr("198.19.0.1"),
		VIP:         netip.MustParseAddr("198.18.0.100"),
		GatewayIP:   opts.Gateway,
	}
	if !t.GatewayIP.IsValid() {
		t.GatewayIP = t.DirServerIP
	}
	var err error
	if t.Client, err = l.NS("client"); err != nil {
		return nil, err
	}
	if t.Director, err = l.NS("director"); err != nil {
		return nil, err
	}
	if t.Switch, err = l.NS("switch"); err != nil {
		return nil, err
	}
	steps := []func() error{
		func() error { return l.Veth(t.Client, "c0", t.Director, "d0") },
		func() error { return t.Client.Addr("c0", "198.18.0.1/24") },
		func() error { return t.Director.Addr("d0", "198.18.0.2/24") },
		func() error { return l.Veth(t.Director, "d1", t.Switch, "sd1") },
		func() error { return t.Director.Addr("d1", "198.19.0.1/24") },
		func() error { return t.Director.Sysctl("net.ipv4.ip_forward", "0") },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	ports := []string{"sd1"}
	for i := 1; i <= opts.RealServers; i++ {
		rs, err := l.NS(fmt.Sprintf("rs%d", i))
		if err != nil {
			return nil, err
		}
		ip := netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + i)})
		sw := fmt.Sprintf("s%d", i)
		if err := l.Veth(rs, "eth0", t.Switch, sw); err != nil {
			return nil, err
		}
		if err := rs.Addr("eth0", ip.String()+"/24"); err != nil {
			return nil, err
		}
		if err := rs.Route("default", "via", t.GatewayIP.String()); err != nil {
			return nil, err
		}
		t.RS = append(t.RS, rs)
		t.RSIPs = append(t.RSIPs, ip)
		ports = append(ports, sw)
	}
	if err := t.Switch.Bridge("br0", ports...); err != nil {
		return nil, err
	}
	return t, nil
}

// Nginx is an nginx server running in a namespace.
type Nginx struct {
	ns   *NS
	dir  string
	proc *Proc
	sum  string
}

const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    log_format uvs '$remote_addr $remote_port "$request" $status';
    access_log %[1]s/access.log uvs;
    client_body_temp_path %[1]s/tmp;
    proxy_temp_path %[1]s/tmp;
    fastcgi_temp_path %[1]s/tmp;
    uwsgi_temp_path %[1]s/tmp;
    scgi_temp_path %[1]s/tmp;
    client_max_body_size 0;
    keepalive_requests 1000000;
    server {
        listen 80 reuseport;
        root %[1]s/www;
        location = / {
            return 200 "%[2]s\n";
        }
        location = /big { }
        location = /health { try_files /health =500; }
    }
}
`

// bigSize is the size of the /big file every server serves.
const bigSize = 10 << 20

// StartNginx runs nginx in the namespace with its files in dir: "/"
// answers the server's name, /big is 10 MB of deterministic bytes,
// /health answers 200 while dir/www/health exists and 500 otherwise. It
// returns once nginx accepts connections on port 80.
func (n *NS) StartNginx(dir, name string) (*Nginx, error) {
	for _, d := range []string{"tmp", "www"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	big := make([]byte, bigSize)
	r := rand.New(rand.NewPCG(42, 7))
	for i := 0; i+8 <= len(big); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			big[i+k] = byte(v >> (8 * k))
		}
	}
	sum := sha256.Sum256(big)
	if err := os.WriteFile(filepath.Join(dir, "www", "big"), big, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "www", "health"), []byte("ok\n"), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, name), 0o644); err != nil {
		return nil, err
	}
	ng := &Nginx{ns: n, dir: dir, sum: hex.EncodeToString(sum[:])}
	return ng, ng.Start()
}

// Start starts (or restarts) nginx and waits until it accepts.
func (ng *Nginx) Start() error {
	p, err := ng.ns.Start("nginx", "-c", filepath.Join(ng.dir, "nginx.conf"), "-p", ng.dir)
	if err != nil {
		return err
	}
	ng.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var exited error
	err = Eventually(ctx, 20*time.Millisecond, func() error {
		if p.Exited() {
			exited = errors.New("nginx exited: " + p.Output())
			cancel()
			return exited
		}
		return ng.ns.Do(func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:80", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	})
	if exited != nil {
		err = exited
	}
	if err != nil {
		return fmt.Errorf("nginx in %s: %w", ng.ns.name, err)
	}
	return nil
}

// Stop stops nginx.
func (ng *Nginx) Stop() error { return ng.proc.Stop() }

// SetHealthy makes /health answer 200 (true) or 500 (false).
func (ng *Nginx) SetHealthy(ok bool) error {
	p := filepath.Join(ng.dir, "www", "health")
	if ok {
		return os.WriteFile(p, []byte("ok\n"), 0o644)
	}
	err := os.Remove(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// BigSHA256 is the hex SHA-256 of /big.
func (ng *Nginx) BigSHA256() string { return ng.sum }

// AccessLogRemoteAddrs returns the client address of every logged request.
func (ng *Nginx) AccessLogRemoteAddrs() ([]string, error) {
	f, err := os.Open(filepath.Join(ng.dir, "access.log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 0 {
			out = append(out, fs[0])
		}
	}
	return out, sc.Err()
}

// StartUDPEcho serves UDP on port inside the namespace, answering each
// datagram with "<namespace short name>:" and its payload. stop ends it;
// Close of the lab also removes it with the namespace.
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
	short := strings.TrimPrefix(n.name, n.lab.prefix+"-")
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(append([]byte(short+":"), buf[:k]...), from)
		}
	}()
	n.lab.mu.Lock()
	n.lab.closers = append(n.lab.closers, func() { c.Close() })
	n.lab.mu.Unlock()
	return func() { c.Close() }, nil
}
