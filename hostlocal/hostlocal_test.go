package hostlocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/lab"
)

var (
	vip       = netip.MustParseAddr("198.18.0.100")
	clientIP  = netip.MustParseAddr("198.18.0.1")
	directIP  = netip.MustParseAddr("198.18.0.2")
	vipPort   = uint16(5000)
	cliPort   = uint16(4000)
	waitLimit = 5 * time.Second
)

// udp4 builds an IPv4/UDP packet with correct checksums.
func udp4(src, dst netip.AddrPort, payload []byte) []byte {
	p := make([]byte, header.IPv4MinimumSize+header.UDPSize+len(payload))
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(p)), ID: 0x1234, Flags: header.IPv4FlagDontFragment,
		TTL: 64, Protocol: header.ProtoUDP, Src: src.Addr().As4(), Dst: dst.Addr().As4()})
	udp := header.UDP(p[header.IPv4MinimumSize:])
	udp.SetSrcPort(src.Port())
	udp.SetDstPort(dst.Port())
	udp.SetLength(uint16(len(udp)))
	copy(udp[header.UDPSize:], payload)
	c := ^header.Checksum(udp, header.PseudoHeaderChecksum(header.ProtoUDP, ip.Src(), ip.Dst(), uint16(len(udp))))
	if c == 0 {
		c = 0xffff
	}
	udp.SetChecksum(c)
	return p
}

func TestChecksumKnown(t *testing.T) {
	// The IPv4 header example from RFC 1071's discussion (Wikipedia's).
	h := header.IPv4{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := h.CalculateChecksum(); got != 0xb861 {
		t.Fatalf("checksum = %#04x, want 0xb861", got)
	}
	p := udp4(netip.AddrPortFrom(clientIP, cliPort), netip.AddrPortFrom(vip, vipPort), []byte("abc"))
	if header.Checksum(p[:header.IPv4MinimumSize], 0) != 0xffff {
		t.Fatal("IP header does not verify")
	}
}

func TestWriteRejectsNonIPv4(t *testing.T) {
	var i Injector // never reaches the descriptor
	for _, p := range [][]byte{nil, make([]byte, 19), append([]byte{0x60}, make([]byte, 39)...)} {
		if err := i.Write(p); !errors.Is(err, ErrNotIPv4) {
			t.Errorf("Write(%d bytes, %#x...) = %v, want ErrNotIPv4", len(p), append(p, 0)[0], err)
		}
	}
}

// TestNameValidation checks the interface name validator (nsexec tests
// table names), not NewGuard or OpenInjector,
// which would act on the test's own (root) namespace if one let a bad
// name through.
func TestNameValidation(t *testing.T) {
	for _, name := range []string{"", "a/b", "a:b", "d 0", `d0"`, "d0\n", "0123456789abcdef", ".", "..", "eth%d"} {
		if checkIfname(name, false) == nil {
			t.Errorf("interface name %q accepted", name)
		}
	}
	for _, name := range []string{"d0", "eth0.100", "uvs-inj", "0123456789abcde"} {
		if err := checkIfname(name, false); err != nil {
			t.Errorf("interface name %q: %v", name, err)
		}
	}
	if err := checkIfname("uvs%d", true); err != nil {
		t.Errorf("template: %v", err)
	}
}

// pair builds the test topology: "dir" (VIP on lo, 198.18.0.2/24 on d0)
// and "cli" (198.18.0.1/24 on c0, the VIP routed via the director).
func pair(t *testing.T) (l *lab.Lab, dir, cli *lab.NS) {
	t.Helper()
	l = lab.NewT(t)
	var err error
	if dir, err = l.NS("dir"); err != nil {
		t.Fatal(err)
	}
	if cli, err = l.NS("cli"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return l.Veth(dir, "d0", cli, "c0") },
		func() error { return dir.Addr("lo", vip.String()+"/32") },
		func() error { return dir.Addr("d0", directIP.String()+"/24") },
		func() error { return cli.Addr("c0", clientIP.String()+"/24") },
		func() error { return cli.Route(vip.String()+"/32", "via", directIP.String()) },
		// As on a director that is a real server (LVS-DR).
		func() error { return dir.Sysctl("net.ipv4.conf.all.arp_ignore", "1") },
		func() error { return dir.Sysctl("net.ipv4.conf.all.arp_announce", "2") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return l, dir, cli
}

// listen opens a UDP socket bound to addr inside ns.
func listen(t *testing.T, ns *lab.NS, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntil reads from c until a datagram with payload want arrives
// (returning its source) or the deadline passes (returning an error).
// Other payloads, left by earlier steps, are skipped.
func readUntil(c *net.UDPConn, want []byte, deadline time.Time) (netip.AddrPort, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return netip.AddrPort{}, err
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if bytes.Equal(buf[:n], want) {
			return from, nil
		}
	}
}

func TestPrivilegedInjector(t *testing.T) {
	for _, rp := range []string{"0", "1", "2"} {
		t.Run("all.rp_filter="+rp, func(t *testing.T) { testInjector(t, rp) })
	}
}

func testInjector(t *testing.T, allRP string) {
	_, dir, cli := pair(t)
	if err := dir.Sysctl("net.ipv4.conf.all.rp_filter", allRP); err != nil {
		t.Fatal(err)
	}
	srv := listen(t, dir, netip.AddrPortFrom(vip, vipPort))
	client := listen(t, cli, netip.AddrPortFrom(clientIP, cliPort))

	var inj *Injector
	if err := dir.Do(func() (err error) {
		inj, err = OpenInjector("uvsinj%d")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer inj.Close()
	if !strings.HasPrefix(inj.Name(), "uvsinj") || strings.Contains(inj.Name(), "%") {
		t.Fatalf("Name() = %q", inj.Name())
	}
	wantRP := "0"
	if allRP != "0" {
		wantRP = "2"
	}
	if err := dir.Do(func() error {
		ifi, err := net.InterfaceByName(inj.Name())
		if err != nil {
			return err
		}
		if ifi.Flags&net.FlagUp == 0 {
			return fmt.Errorf("%s is not up: %v", ifi.Name, ifi.Flags)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		// The dummy address only where rp_filter needs one.
		if want := allRP != "0"; (len(addrs) == 1 && addrs[0].String() == "192.0.0.8/32") != want || (!want && len(addrs) != 0) {
			return fmt.Errorf("%s addresses %v (all.rp_filter=%s)", ifi.Name, addrs, allRP)
		}
		for key, want := range map[string]string{"rp_filter": wantRP, "accept_local": "1"} {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + inj.Name() + "/" + key)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != want {
				return fmt.Errorf("%s.%s = %s, want %s", inj.Name(), key, got, want)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Not in the test's own namespace.
	if _, err := net.InterfaceByName(inj.Name()); err == nil {
		t.Fatalf("%s exists outside the director's namespace", inj.Name())
	}

	// Written from this goroutine, outside the namespace: the device
	// belongs to the namespace it was created in.
	payload := []byte("injected via tun")
	if err := inj.Write(udp4(netip.AddrPortFrom(clientIP, cliPort), netip.AddrPortFrom(vip, vipPort), payload)); err != nil {
		t.Fatal(err)
	}
	from, err := readUntil(srv, payload, time.Now().Add(waitLimit))
	if err != nil {
		t.Fatalf("local socket on the VIP did not receive the injected packet: %v", err)
	}
	if want := netip.AddrPortFrom(clientIP, cliPort); from != want {
		t.Fatalf("received from %v, want %v", from, want)
	}

	// The reply goes out through the normal route, d0, to the client.
	reply := []byte("reply from the VIP")
	if _, err := srv.WriteToUDPAddrPort(reply, from); err != nil {
		t.Fatal(err)
	}
	rfrom, err := readUntil(client, reply, time.Now().Add(waitLimit))
	if err != nil {
		t.Fatalf("client did not receive the reply: %v", err)
	}
	if want := netip.AddrPortFrom(vip, vipPort); rfrom != want {
		t.Fatalf("reply from %v, want %v", rfrom, want)
	}

	pkt := udp4(netip.AddrPortFrom(clientIP, cliPort), netip.AddrPortFrom(vip, vipPort), []byte("x"))
	if n := testing.AllocsPerRun(100, func() {
		if err := inj.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Write allocates %v times per packet", n)
	}

	name := inj.Name()
	if err := inj.Close(); err != nil {
		t.Fatal(err)
	}
	if err := inj.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := inj.Write(pkt); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want os.ErrClosed", err)
	}
	if err := dir.Do(func() error {
		if _, err := net.InterfaceByName(name); err == nil {
			return fmt.Errorf("%s still exists after Close", name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedGuard(t *testing.T) {
	lab.RequireCommands(t, "nft")
	l, dir, cli := pair(t)
	if err := l.Veth(dir, "d1", cli, "c1"); err != nil {
		t.Fatal(err)
	}
	srv := listen(t, dir, netip.AddrPortFrom(netip.IPv4Unspecified(), vipPort))
	client := listen(t, cli, netip.AddrPortFrom(clientIP, 0))
	cliMAC, err := cli.MAC("c0")
	if err != nil {
		t.Fatal(err)
	}

	seq := 0
	next := func() []byte { seq++; return fmt.Appendf(nil, "datagram %d", seq) }
	send := func(dst netip.Addr, p []byte) {
		t.Helper()
		if _, err := client.WriteToUDPAddrPort(p, netip.AddrPortFrom(dst, vipPort)); err != nil {
			t.Fatal(err)
		}
	}
	// arrives resends a fresh datagram to dst until one arrives (the
	// first may wait on ARP); it fails after waitLimit.
	arrives := func(dst netip.Addr) {
		t.Helper()
		end := time.Now().Add(waitLimit)
		for time.Now().Before(end) {
			p := next()
			send(dst, p)
			if _, err := readUntil(srv, p, time.Now().Add(200*time.Millisecond)); err == nil {
				return
			}
		}
		t.Fatalf("no datagram to %v arrived within %v", dst, waitLimit)
	}
	var g *Guard
	dropped := func() uint64 {
		t.Helper()
		n, _, err := g.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// blocked sends one datagram to dst, waits for the guard's counter
	// to count it and checks that it is not delivered within 300 ms.
	blocked := func(dst netip.Addr) {
		t.Helper()
		before := dropped()
		p := next()
		send(dst, p)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := lab.Eventually(ctx, 10*time.Millisecond, func() error {
			if n := dropped(); n <= before {
				return fmt.Errorf("dropped counter still %d", n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := readUntil(srv, p, time.Now().Add(300*time.Millisecond)); err == nil {
			t.Fatalf("datagram to %v arrived through the guard", dst)
		}
	}
	tables := func(ns *lab.NS) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		var out []byte
		var err error
		if ns == nil {
			// Read only: the root namespace must not hold our tables.
			out, err = exec.CommandContext(ctx, "nft", "list", "tables").CombinedOutput()
		} else {
			var s string
			s, err = ns.Run(ctx, "nft", "list", "tables")
			out = []byte(s)
		}
		if err != nil {
			t.Fatalf("nft list tables: %v: %s", err, out)
		}
		return string(out)
	}

	// Without a guard the director's kernel serves the VIP.
	arrives(vip)

	table := "uvs_test_" + l.Prefix() + "_d0"
	if err := dir.Do(func() (err error) {
		g, err = NewGuard(table, "d0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// No VIPs yet: nothing is dropped.
	arrives(vip)
	if n := dropped(); n != 0 {
		t.Fatalf("dropped %d with no VIPs", n)
	}

	// Called from this goroutine, outside the director's namespace: the
	// guard runs nft in its own namespace.
	if err := g.SetVIPs([]netip.Addr{vip, vip, netip.AddrFrom16(vip.As16())}); err != nil {
		t.Fatal(err)
	}
	if err := g.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	blocked(vip)
	arrives(directIP) // not a VIP: untouched

	if out := tables(dir); !strings.Contains(out, "table netdev "+table) {
		t.Fatalf("director's tables lack %s:\n%s", table, out)
	}
	if out := tables(nil); strings.Contains(out, l.Prefix()) {
		t.Fatalf("root namespace holds our table:\n%s", out)
	}

	// A second guard on another interface coexists.
	table1 := "uvs_test_" + l.Prefix() + "_d1"
	var g1 *Guard
	if err := dir.Do(func() (err error) {
		g1, err = NewGuard(table1, "d1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := g1.SetVIPs([]netip.Addr{vip}); err != nil {
		t.Fatal(err)
	}
	if out := tables(dir); !strings.Contains(out, "table netdev "+table) || !strings.Contains(out, "table netdev "+table1) {
		t.Fatalf("director's tables lack one of the guards:\n%s", out)
	}
	if err := g1.Close(); err != nil {
		t.Fatal(err)
	}
	blocked(vip)

	// A peer director's frames pass: this host must serve them.
	var mac [6]byte
	copy(mac[:], cliMAC)
	if err := g.SetPeers([][6]byte{{0x02, 0, 0, 0, 0, 1}, mac}); err != nil {
		t.Fatal(err)
	}
	before := dropped()
	arrives(vip)
	if n := dropped(); n != before {
		t.Fatalf("dropped counter moved from %d to %d for a peer's frames", before, n)
	}
	// Replacing the peers removes the old ones.
	if err := g.SetPeers([][6]byte{{0x02, 0, 0, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	blocked(vip)
	// And an empty VIP set lets everything through again.
	if err := g.SetVIPs(nil); err != nil {
		t.Fatal(err)
	}
	arrives(vip)

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := g.SetVIPs([]netip.Addr{vip}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetVIPs after Close = %v, want ErrClosed", err)
	}
	if out := tables(dir); strings.Contains(out, l.Prefix()) {
		t.Fatalf("tables left after Close:\n%s", out)
	}
	arrives(vip)

	// A table left by a process that died is replaced, not merged.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if out, err := dir.Run(ctx, "nft", "add table netdev "+table+"; add set netdev "+table+" stale { type ipv4_addr; }"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := dir.Do(func() (err error) {
		g, err = NewGuard(table, "d0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if out, err := dir.Run(ctx, "nft", "list", "table", "netdev", table); err != nil || strings.Contains(out, "stale") || !strings.Contains(out, "chain ingress") {
		t.Fatalf("after replacing a stale table (%v):\n%s", err, out)
	}
	if err := g.SetVIPs([]netip.Addr{vip}); err != nil {
		t.Fatal(err)
	}
	blocked(vip)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGuardRejectsIPv6VIP(t *testing.T) {
	g := &Guard{table: "x"} // no nft: the address is refused before any command
	if err := g.SetVIPs([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("SetVIPs(IPv6) = %v, want a not-IPv4 error", err)
	}
}
