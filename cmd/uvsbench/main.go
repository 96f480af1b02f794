// Command uvsbench is `make labbench`: it builds a network-namespace lab
// and benchmarks uvsd against plain kernel forwarding, nftables DNAT,
// HAProxy and (where the module exists) kernel IPVS with the same loads,
// then prints one table and writes it, with a chart, to the out folder.
//
//	uvsbench [-bin bin] [-runs 3] [-duration 5s] [-out bench/out]
//	         [-peers kernel,nft,haproxy,ipvs,uvs] [-loads wrk-ka,wrk-close,iperf3,udp]
//	         [-workers 1[,2]] [-uvsd-args "--spin 50us"] [-quick]
//
// It needs root (network namespaces) and stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/uvs-project/uvs/bench"
)

func main() {
	var (
		bin      = flag.String("bin", "bin", "folder holding uvsd and uvsadm")
		runs     = flag.Int("runs", 3, "runs per peer and load (the table shows medians)")
		duration = flag.Duration("duration", 5*time.Second, "length of each run (whole seconds)")
		out      = flag.String("out", "bench/out", "folder for the markdown table, the SVG chart and the raw JSON")
		peers    = flag.String("peers", strings.Join(bench.DefaultPeers, ","), "peers, in order")
		loads    = flag.String("loads", strings.Join(bench.DefaultLoads, ","), "loads, in order")
		workers  = flag.String("workers", "1", "uvsd worker counts: one uvs column each (e.g. 1,2)")
		quick    = flag.Bool("quick", false, "smoke test: 1 run of 2 s per load")
		uvsdArgs = flag.String("uvsd-args", "", "extra uvsd flags for every uvs column, space-separated (e.g. \"--spin 50us\")")
	)
	flag.Parse()
	cfg := bench.Config{
		Bin:      *bin,
		Runs:     *runs,
		Duration: *duration,
		Peers:    split(*peers),
		Loads:    split(*loads),
		UvsdArgs: strings.Fields(*uvsdArgs),
		Log:      os.Stderr,
	}
	if *quick {
		cfg.Runs, cfg.Duration = 1, 2*time.Second
	}
	for _, w := range split(*workers) {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "uvsbench: -workers: bad count %q\n", w)
			os.Exit(2)
		}
		cfg.Workers = append(cfg.Workers, n)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "uvsbench: needs root (network namespaces)")
		os.Exit(1)
	}
	// Interrupts end the current run early; the lab is still torn down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		fmt.Print("\n" + rep.Text())
		paths, werr := rep.WriteFiles(*out)
		if werr != nil {
			err = errors.Join(err, werr)
		}
		for _, p := range paths {
			fmt.Println("wrote", p)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uvsbench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
