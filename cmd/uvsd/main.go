// Command uvsd is the uvs director: a userspace IPVS with keepalived's
// configuration language.
//
//	uvsd -f /etc/keepalived/keepalived.conf [--control /run/uvs/uvsd.sock]
//	uvsd --check -f FILE
//	uvsd reload [--control PATH]   (like SIGHUP: apply the config file's changes)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/uvs-project/uvs/control"
	"github.com/uvs-project/uvs/daemon"
	"github.com/uvs-project/uvs/dataplane"
)

func main() {
	var (
		file    = flag.String("f", "/etc/keepalived/keepalived.conf", "keepalived.conf `file` to load")
		ctl     = flag.String("control", control.DefaultPath, "control socket `path`")
		check   = flag.Bool("check", false, "validate the configuration and exit (like keepalived -t)")
		workers = flag.Int("workers", 0, "dataplane workers (default: one per CPU; one with -backend afxdp)")
		backend = flag.String("backend", dataplane.BackendAFPacket, "dataplane `backend`: afpacket, or afxdp (an XDP program and AF_XDP sockets beside AF_PACKET; one worker)")
		xskTx   = flag.Bool("xsk-tx", true, "with -backend afpacket, transmit through a transmit-only AF_XDP socket per worker and interface where the interface has a queue for it (sendmmsg otherwise)")
		logJSON = flag.Bool("log-json", false, "log in JSON")
		debug   = flag.Bool("debug", false, "log debug messages")
		metrics = flag.String("metrics", "", "serve Prometheus metrics on `addr` (host:port); off by default")
		spin    = flag.Duration("spin", 0, "keep polling the rings for this long after traffic before sleeping (0: never)")
		fwq     = flag.Uint("fwmark-queue", daemon.DefaultFWMarkQueue, "NFQUEUE `number` that brings the packets of fwmark services")
		nodest  = flag.Bool("expire-nodest-conn", false, "IPVS's net.ipv4.vs.expire_nodest_conn: expire a removed real server's connection at its next packet (default: drop its packets until it times out)")
	)
	flag.StringVar(file, "use-file", *file, "same as -f")
	if len(os.Args) > 1 && os.Args[1] == "reload" {
		os.Exit(reload(os.Args[2:]))
	}
	flag.Parse()

	lvl := slog.LevelInfo
	if *debug {
		lvl = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	}
	log := slog.New(h)
	slog.SetDefault(log)

	if *check {
		cfg, err := daemon.Check(*file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintln(os.Stderr, "warning:", w)
		}
		fmt.Printf("%s: configuration OK\n", *file)
		return
	}
	if *fwq == 0 || *fwq > 65535 {
		fmt.Fprintln(os.Stderr, "uvsd: -fwmark-queue must be 1 to 65535")
		os.Exit(2)
	}
	n := *workers
	if n <= 0 {
		n = runtime.NumCPU()
		if *backend == dataplane.BackendAFXDP {
			n = 1
		}
	}
	if err := daemon.Run(context.Background(), daemon.Options{ConfigFile: *file, ControlPath: *ctl, Workers: n, MetricsAddr: *metrics, Spin: *spin, ExpireNodestConn: *nodest, FWMarkQueue: uint16(*fwq), Backend: *backend, XSKTx: *xskTx, Log: log}); err != nil {
		fmt.Fprintln(os.Stderr, "uvsd:", err)
		os.Exit(1)
	}
}

// reload asks a running uvsd to re-read its configuration.
func reload(args []string) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	ctl := fs.String("control", control.DefaultPath, "control socket `path`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := control.Dial(*ctl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "uvsd reload:", err)
		return 1
	}
	defer c.Close()
	if _, err := c.Do(&control.Request{Op: control.OpReload}); err != nil {
		fmt.Fprintln(os.Stderr, "uvsd reload:", err)
		return 1
	}
	fmt.Println("configuration reloaded")
	return 0
}
