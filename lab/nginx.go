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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Nginx is an nginx server running in a namespace, its files in one folder.
//
//	GET /        200, the server's name and a newline (any path not below)
//	GET /big     10 MB of deterministic pseudo-random bytes (BigSHA256)
//	GET /health  200 while SetHealthy(true) (the default), 500 otherwise
//
// The access log records $remote_addr first on each line.
type Nginx struct {
	ns   *NS
	dir  string
	name string

	mu   sync.Mutex
	proc *Proc
}

const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    default_type text/plain;
    log_format uvs '$remote_addr $remote_port "$request" $status $body_bytes_sent';
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
        location / {
            return 200 "%[2]s\n";
        }
        location = /big { }
        location = /health { try_files /health =500; }
    }
}
`

// bigSize is the size of /big.
const bigSize = 10 << 20

// bigData is /big's content, made once per process from a fixed seed.
var bigData = sync.OnceValues(func() ([]byte, string) {
	b := make([]byte, bigSize)
	r := rand.New(rand.NewPCG(42, 7))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
})

// BigSHA256 is the hex SHA-256 of every server's /big.
func BigSHA256() string {
	_, sum := bigData()
	return sum
}

// validServerName reports whether name can be written into nginx.conf
// unquoted and unescaped.
func validServerName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)
		if !ok {
			return false
		}
	}
	return true
}

// StartNginx writes an nginx configuration and content into dir (an
// absolute folder, created if missing), runs nginx in the namespace as a
// lab process, and returns once it accepts TCP on port 80 there. name
// ([A-Za-z0-9._:-]) is what "/" answers.
func (n *NS) StartNginx(dir, name string) (*Nginx, error) {
	if !validServerName(name) {
		return nil, fmt.Errorf("nginx: server name %q: want 1-64 of [A-Za-z0-9._:-]", name)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"tmp", "www"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	big, _ := bigData()
	if err := os.WriteFile(filepath.Join(dir, "www", "big"), big, 0o644); err != nil {
		return nil, err
	}
	ng := &Nginx{ns: n, dir: dir, name: name}
	if err := ng.SetHealthy(true); err != nil {
		return nil, err
	}
	if err := os.WriteFile(ng.confPath(), fmt.Appendf(nil, nginxConf, dir, name), 0o644); err != nil {
		return nil, err
	}
	return ng, ng.Start()
}

func (ng *Nginx) confPath() string { return filepath.Join(ng.dir, "nginx.conf") }

// Name is what the server's "/" answers.
func (ng *Nginx) Name() string { return ng.name }

// Dir is the server's folder: nginx.conf, access.log, error.log, www/.
func (ng *Nginx) Dir() string { return ng.dir }

// Start starts nginx again after Stop and waits until it accepts on port
// 80 (at most 10 s). It fails if this nginx is already running.
func (ng *Nginx) Start() error {
	ng.mu.Lock()
	defer ng.mu.Unlock()
	if ng.proc != nil && !ng.proc.Exited() {
		return fmt.Errorf("nginx %s in %s: already running", ng.name, ng.ns.name)
	}
	// -e: the error log before the configuration is read, kept in dir too.
	p, err := ng.ns.Start("nginx", "-e", filepath.Join(ng.dir, "error.log"), "-c", ng.confPath(), "-p", ng.dir)
	if err != nil {
		return err
	}
	ng.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = Eventually(ctx, 10*time.Millisecond, func() error {
		if p.Exited() {
			return errExited
		}
		return ng.ns.Do(func() error {
			c, err := net.DialTimeout("tcp4", "127.0.0.1:80", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	})
	if errors.Is(err, errExited) || p.Exited() {
		log, _ := os.ReadFile(filepath.Join(ng.dir, "error.log"))
		return fmt.Errorf("nginx %s in %s exited: %v\n%s%s", ng.name, ng.ns.name, p.Wait(), p.Output(), log)
	}
	if err != nil {
		_ = p.Stop()
		return fmt.Errorf("nginx %s in %s: not accepting on port 80: %w", ng.name, ng.ns.name, err)
	}
	return nil
}

// errExited ends a wait on a process that has exited.
var errExited = errors.New("process exited")

// Stop stops nginx (SIGTERM, SIGKILL after 2 s); Start runs it again.
func (ng *Nginx) Stop() error {
	ng.mu.Lock()
	p := ng.proc
	ng.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop()
}

// Proc is the running (or last) nginx process.
func (ng *Nginx) Proc() *Proc {
	ng.mu.Lock()
	defer ng.mu.Unlock()
	return ng.proc
}

// SetHealthy makes /health answer 200 (true) or 500 (false); it takes
// effect on the next request.
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
func (ng *Nginx) BigSHA256() string { return BigSHA256() }

// AccessLogRemoteAddrs returns the client address ($remote_addr) of every
// request logged so far, oldest first.
func (ng *Nginx) AccessLogRemoteAddrs() ([]string, error) {
	f, err := os.Open(filepath.Join(ng.dir, "access.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
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
