// Command uvsdemo is `make demo`: it builds a network-namespace lab (a
// client, a two-armed director, two nginx real servers), runs uvsd on the
// director with a keepalived.conf, sends real HTTP and UDP traffic to the
// VIP, prints what uvsadm shows, and tears everything down.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/uvs-project/uvs/lab"
)

func main() {
	bin := flag.String("bin", "bin", "folder holding uvsd and uvsadm")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run(bin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	bin, _ = filepath.Abs(bin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()

	l, err := lab.New("demo")
	if err != nil {
		return err
	}
	defer func() {
		l.Close()
		fmt.Printf("\n==> lab torn down; demo took %.1fs\n", time.Since(start).Seconds())
	}()
	step("building the lab: client — director (uvsd) — switch — 2 nginx real servers")
	topo, err := lab.NATTopology(l, lab.NATOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("client %v, director %v | %v, VIP %v (owned by uvsd, not by any kernel), real servers %v\n",
		topo.ClientIP, topo.DirClientIP, topo.DirServerIP, topo.VIP, topo.RSIPs)
	for i, rs := range topo.RS {
		if _, err := rs.StartNginx(l.Dir(rs.Name()), fmt.Sprintf("rs%d", i+1)); err != nil {
			return err
		}
		if _, err := rs.StartUDPEcho(5353); err != nil {
			return err
		}
	}
	dir := l.Dir("uvsd")
	cfgPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfgPath, []byte(topo.KeepalivedConf("")), 0o644); err != nil {
		return err
	}
	sock := filepath.Join(dir, "uvsd.sock")
	step("starting uvsd -f %s in the director's namespace", cfgPath)
	// One worker keeps rr one sequence, as IPVS's; more workers each run their own.
	uvsd, err := topo.Director.Start(filepath.Join(bin, "uvsd"), "-f", cfgPath, "--control", sock, "--workers", "1")
	if err != nil {
		return err
	}
	uvsadm := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "uvsadm"), append([]string{"--control", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	if err := lab.Eventually(ctx, 50*time.Millisecond, func() error { _, err := uvsadm("-L", "-n"); return err }); err != nil {
		return fmt.Errorf("uvsd did not come up: %w\n%s", err, uvsd.Output())
	}

	step("client pings the VIP (uvsd answers ARP and ICMP echo)")
	out, err := topo.Client.Run(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "1", topo.VIP.String())
	fmt.Print(out)
	if err != nil {
		return err
	}

	const n = 20
	step("client: %d HTTP requests to http://%v/, each on a new connection (curl)", n, topo.VIP)
	args := []string{"-s", "--max-time", "5", "-H", "Connection: close"}
	for i := 0; i < n; i++ {
		args = append(args, fmt.Sprintf("http://%v/", topo.VIP))
	}
	out, err = topo.Client.Run(ctx, "curl", args...)
	if err != nil {
		return fmt.Errorf("curl: %w\n%s", err, out)
	}
	counts := map[string]int{}
	for _, line := range strings.Fields(out) {
		counts[line]++
	}
	var names []string
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("  %-4s answered %d\n", k, counts[k])
	}

	step("client: 4 UDP datagrams to %v:53", topo.VIP)
	err = topo.Client.Do(func() error {
		for i := 0; i < 4; i++ {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(topo.VIP, 53)))
			if err != nil {
				return err
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte("hello")); err != nil {
				c.Close()
				return err
			}
			buf := make([]byte, 512)
			k, err := c.Read(buf)
			c.Close()
			if err != nil {
				return fmt.Errorf("udp: %w", err)
			}
			fmt.Printf("  reply: %s\n", buf[:k])
		}
		return nil
	})
	if err != nil {
		return err
	}

	step("uvsadm -L -n")
	out, err = uvsadm("-L", "-n")
	fmt.Print(out)
	if err != nil {
		return err
	}
	step("uvsadm -L -n --stats")
	out, err = uvsadm("-L", "-n", "--stats")
	fmt.Print(out)
	if err != nil {
		return err
	}
	step("uvsadm -L -n -c (connection table)")
	out, err = uvsadm("-L", "-n", "-c")
	fmt.Print(out)
	return err
}
