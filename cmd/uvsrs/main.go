// Command uvsrs prepares a real server for LVS direct routing or
// tunnelling: it puts the VIPs on the loopback interface and stops the
// host from answering ARP for them (arp_ignore=1, arp_announce=2), so that
// only the director does. In tun mode it also decapsulates IPIP in
// userspace, for hosts without the ipip module: an AF_PACKET socket takes
// the tunnelled packets and a TUN device hands the inner packets to the
// local stack. It undoes all of it when stopped (SIGINT/SIGTERM).
//
//	uvsrs --vip 198.18.0.100[,VIP...] --mode dr|tun
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

func main() {
	vips := flag.String("vip", "", "comma-separated virtual IPs served by this real server")
	mode := flag.String("mode", "dr", "forwarding mode: dr or tun")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*vips, *mode, log); err != nil {
		fmt.Fprintln(os.Stderr, "uvsrs:", err)
		os.Exit(1)
	}
}

// sysctl is one setting and the value it had, to restore.
type sysctl struct{ path, old string }

func setSysctl(key, val string) (sysctl, error) {
	p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	old, err := os.ReadFile(p)
	if err != nil {
		return sysctl{}, fmt.Errorf("sysctl %s: %w", key, err)
	}
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return sysctl{}, fmt.Errorf("sysctl %s=%s: %w", key, val, err)
	}
	return sysctl{p, strings.TrimSpace(string(old))}, nil
}

func run(vipList, mode string, log *slog.Logger) error {
	if mode != "dr" && mode != "tun" {
		return fmt.Errorf("mode %q: want dr or tun", mode)
	}
	var vips []netip.Addr
	for _, s := range strings.Split(vipList, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || !a.Is4() {
			return fmt.Errorf("--vip %q: want IPv4 addresses", s)
		}
		vips = append(vips, a)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	// Take the signals before the first change: a SIGTERM in between
	// would otherwise kill the process with nothing undone.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		log.Info("uvsrs: real server restored")
	}()
	for _, key := range []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.default.arp_ignore"} {
		s, err := setSysctl(key, "1")
		if err != nil {
			return err
		}
		undo = append(undo, func() { _ = os.WriteFile(s.path, []byte(s.old), 0o644) })
	}
	for _, key := range []string{"net.ipv4.conf.all.arp_announce", "net.ipv4.conf.default.arp_announce"} {
		s, err := setSysctl(key, "2")
		if err != nil {
			return err
		}
		undo = append(undo, func() { _ = os.WriteFile(s.path, []byte(s.old), 0o644) })
	}
	for _, v := range vips {
		addr := &netlink.Addr{IPNet: netlink.NewIPNet(v.AsSlice())}
		addr.IPNet.Mask = []byte{255, 255, 255, 255}
		if err := netlink.AddrAdd(lo, addr); err != nil {
			return fmt.Errorf("add %v to lo: %w", v, err)
		}
		undo = append(undo, func() { _ = netlink.AddrDel(lo, addr) })
	}
	if mode == "tun" {
		// The inner packets come from the client but arrive on the TUN
		// device: reverse-path filtering would drop them.
		for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
			s, err := setSysctl(key, "0")
			if err != nil {
				return err
			}
			undo = append(undo, func() { _ = os.WriteFile(s.path, []byte(s.old), 0o644) })
		}
		d, err := newDecap(log)
		if err != nil {
			return err
		}
		undo = append(undo, d.close)
		log.Info("uvsrs: serving", "vips", vips, "mode", mode, "tun", d.name)
		return d.run(ctx)
	}
	log.Info("uvsrs: serving", "vips", vips, "mode", mode)
	<-ctx.Done()
	return nil
}
