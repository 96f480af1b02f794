package nfqueue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/lab"
)

var (
	dirIP     = netip.MustParseAddr("198.18.0.2")
	cliIP     = netip.MustParseAddr("198.18.0.1")
	vip       = netip.MustParseAddr("198.18.5.5") // routed by cli via dir, not local there
	udpPort   = uint16(5353)
	tcpPort   = uint16(80)
	testQueue = uint16(4242)
	testMark  = uint32(7)
	waitLimit = 5 * time.Second
)

// mangle is the operator's side: it marks VIP:5353/udp and VIP:80/tcp at
// the mangle priority and counts what it marked, so a test knows a
// packet has passed prerouting.
const mangle = `table ip uvs_test_mangle {
	counter udp_marked { }
	counter tcp_marked { }
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr 198.18.5.5 udp dport 5353 meta mark set 7 counter name "udp_marked"
		ip daddr 198.18.5.5 tcp dport 80 meta mark set 7 counter name "tcp_marked"
	}
}
`

// nftIn runs nft in ns with script on its stdin (or args alone).
func nftIn(ns *lab.NS, script string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := ns.Exec(ctx, "nft", args...)
	if script != "" {
		cmd.Stdin = strings.NewReader(script)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

var packetsText = regexp.MustCompile(`packets (\d+)`)

func counter(t *testing.T, ns *lab.NS, name string) uint64 {
	t.Helper()
	out, err := nftIn(ns, "", "list", "counter", "ip", "uvs_test_mangle", name)
	if err != nil {
		t.Fatal(err)
	}
	m := packetsText.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in %q", out)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitCounter polls a mangle counter until it reaches at least want.
func waitCounter(t *testing.T, ns *lab.NS, name string, want uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := lab.Eventually(ctx, 10*time.Millisecond, func() error {
		if n := counter(t, ns, name); n < want {
			return fmt.Errorf("%s = %d, want >= %d", name, n, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// queued is a packet read from the queue, its payload copied.
type queued struct {
	Packet
}

// reader reads a Conn from the test goroutine, giving every packet Drop.
type reader struct {
	t    *testing.T
	c    *Conn
	pkts []Packet
	seen []queued // everything read so far
}

// poll reads for up to d (at least one Read), returning what arrived.
func (r *reader) poll(d time.Duration) []queued {
	r.t.Helper()
	var got []queued
	end := time.Now().Add(d)
	for {
		n, err := r.c.Read(r.pkts)
		if err != nil {
			r.t.Fatalf("Read: %v", err)
		}
		for _, p := range r.pkts[:n] {
			q := queued{p}
			q.Payload = bytes.Clone(p.Payload)
			got = append(got, q)
		}
		if n > 0 {
			if err := r.c.VerdictBatch(r.pkts[n-1].ID, Drop); err != nil {
				r.t.Fatalf("VerdictBatch: %v", err)
			}
		}
		if !time.Now().Before(end) {
			break
		}
	}
	r.seen = append(r.seen, got...)
	return got
}

// until calls send and reads until a packet matching match is queued,
// resending every 300 ms (the first may wait on ARP), for waitLimit.
func (r *reader) until(send func(), match func(queued) bool) queued {
	r.t.Helper()
	end := time.Now().Add(waitLimit)
	for time.Now().Before(end) {
		send()
		for _, q := range r.poll(300 * time.Millisecond) {
			if match(q) {
				return q
			}
		}
	}
	r.t.Fatalf("no matching packet queued within %v", waitLimit)
	return queued{}
}

func udpPayload(q queued) []byte {
	ip := header.IPv4(q.Payload)
	if !ip.IsValid(len(q.Payload)) || ip.Protocol() != header.ProtoUDP {
		return nil
	}
	u := header.UDP(ip.Payload())
	if !u.IsValid(len(u)) || u.DstPort() != udpPort {
		return nil
	}
	return u.Payload()
}

func tcpOf(q queued) header.TCP {
	ip := header.IPv4(q.Payload)
	if !ip.IsValid(len(q.Payload)) || ip.Protocol() != header.ProtoTCP {
		return nil
	}
	tcp := header.TCP(ip.Payload())
	if !tcp.IsValid(len(tcp)) {
		return nil
	}
	return tcp
}

// tcp4 builds an IPv4/TCP segment with the given flags and valid
// checksums (Encode writes the IP header's).
func tcp4(src, dst netip.AddrPort, flags uint8) []byte {
	p := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(p)), TTL: 64, Protocol: header.ProtoTCP,
		Src: src.Addr().As4(), Dst: dst.Addr().As4()})
	tcp := header.TCP(p[header.IPv4MinimumSize:])
	tcp.SetSrcPort(src.Port())
	tcp.SetDstPort(dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], 1000)
	if flags&header.TCPFlagAck != 0 {
		binary.BigEndian.PutUint32(tcp[8:], 2000)
	}
	tcp[12] = 5 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	tcp.SetChecksum(^header.Checksum(tcp, header.PseudoHeaderChecksum(header.ProtoTCP, ip.Src(), ip.Dst(), uint16(len(tcp)))))
	return p
}

func TestPrivilegedQueue(t *testing.T) {
	lab.RequireCommands(t, "nft")
	l := lab.NewT(t)
	dir, err := l.NS("dir")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := l.NS("cli")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { return l.Veth(dir, "d0", cli, "c0") },
		func() error { return dir.Addr("d0", dirIP.String()+"/24") },
		func() error { return cli.Addr("c0", cliIP.String()+"/24") },
		func() error { return cli.Route(vip.String()+"/32", "via", dirIP.String()) },
		func() error { return dir.Sysctl("net.ipv4.ip_forward", "0") },
		func() error { _, err := nftIn(dir, mangle, "-f", "-"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var d0 *net.Interface
	if err := dir.Do(func() (err error) { d0, err = net.InterfaceByName("d0"); return err }); err != nil {
		t.Fatal(err)
	}
	cliMAC, err := cli.MAC("c0")
	if err != nil {
		t.Fatal(err)
	}

	// A leftover table of the same name is replaced, not duplicated.
	table := "uvs_test_fwmark"
	var leftover, rules *Rules
	if err := dir.Do(func() (err error) { leftover, err = NewRules(table, testQueue); return err }); err != nil {
		t.Fatal(err)
	}
	leftover.nft.Close() // abandoned without deleting its table, as by a process that died
	if err := dir.Do(func() (err error) { rules, err = NewRules(table, testQueue); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rules.Close() })
	listing, err := nftIn(dir, "", "list", "table", "ip", table)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compat (x_tables NFQUEUE target): %v\n%s", rules.Compat(), listing)
	target := "queue"
	if rules.Compat() {
		target = "NFQUEUE"
	}
	if n := strings.Count(listing, target); n != 2 {
		t.Fatalf("table lists %q %d times, want 2:\n%s", target, n, listing)
	}
	if err := rules.SetMarks([]uint32{testMark}); err != nil {
		t.Fatal(err)
	}

	var c *Conn
	if err := dir.Do(func() (err error) { c, err = Open(Config{Queue: testQueue}); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The queue is this socket's: a second bind is refused.
	if err := dir.Do(func() error {
		c2, err := Open(Config{Queue: testQueue})
		if err == nil {
			c2.Close()
			return errors.New("second Open of the same queue succeeded")
		}
		// Linux refuses another socket's bind with EPERM.
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "bind") || !strings.Contains(err.Error(), "another socket") {
			return fmt.Errorf("second Open: %v, want EPERM from bind, explained", err)
		}
		t.Logf("second Open: %v", err)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var udp *net.UDPConn
	if err := cli.Do(func() (err error) {
		udp, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cliIP, 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	sendUDP := func(payload []byte) func() {
		return func() {
			if _, err := udp.WriteToUDPAddrPort(payload, netip.AddrPortFrom(vip, udpPort)); err != nil {
				t.Fatal(err)
			}
		}
	}
	isUDP := func(payload []byte) func(queued) bool {
		return func(q queued) bool { return bytes.Equal(udpPayload(q), payload) }
	}

	r := &reader{t: t, c: c, pkts: make([]Packet, 16)}
	t.Run("UDP", func(t *testing.T) {
		payload := []byte("fwmark datagram")
		q := r.until(sendUDP(payload), isUDP(payload))
		if q.Mark != testMark || q.InIf != uint32(d0.Index) || q.HwProto != 0x0800 || q.Hook != 0 {
			t.Errorf("mark %d inif %d proto %#x hook %d, want %d %d 0x800 0", q.Mark, q.InIf, q.HwProto, q.Hook, testMark, d0.Index)
		}
		if !q.HasHwAddr || !bytes.Equal(q.HwAddr[:], cliMAC) {
			t.Errorf("hwaddr %v (present %v), want the peer's %v", net.HardwareAddr(q.HwAddr[:]), q.HasHwAddr, cliMAC)
		}
		ip := header.IPv4(q.Payload)
		if ip.Src() != cliIP.As4() || ip.Dst() != vip.As4() || int(ip.TotalLength()) != len(q.Payload) {
			t.Errorf("IPv4 %v -> %v length %d of %d", ip.Src(), ip.Dst(), ip.TotalLength(), len(q.Payload))
		}
		if header.Checksum(q.Payload[:ip.HeaderLength()], 0) != 0xffff {
			t.Error("IPv4 header checksum does not verify")
		}
		u := header.UDP(ip.Payload())
		if u.Checksum() == 0 {
			t.Error("UDP checksum 0: the sender's is expected")
		}
		// veth sends CHECKSUM_PARTIAL; without NFQA_CFG_F_GSO the kernel
		// completes the checksum before queueing.
		if sum := header.Checksum(u, header.PseudoHeaderChecksum(header.ProtoUDP, ip.Src(), ip.Dst(), uint16(len(u)))); sum != 0xffff {
			t.Errorf("UDP checksum %#04x does not verify (sum %#04x)", u.Checksum(), sum)
		}

		// A verdict for a packet no longer queued comes back as a
		// netlink error, which Read counts and skips.
		before := c.Stats()
		if err := c.Verdict(q.ID, Drop); err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(waitLimit)
		for c.Stats().Errors == before.Errors && time.Now().Before(end) {
			r.poll(0)
		}
		if s := c.Stats(); s.Errors != before.Errors+1 || s.LastErrno != unix.ENOENT {
			t.Errorf("after a stale verdict: errors %d (was %d), last errno %v; want one more, ENOENT", s.Errors, before.Errors, s.LastErrno)
		}
	})

	t.Run("OnlyTCPOpeners", func(t *testing.T) {
		var fd int
		if err := cli.Do(func() (err error) {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: vip.As4()}
		dst := netip.AddrPortFrom(vip, tcpPort)
		others := map[uint16]uint8{ // source port: flags that must not be queued
			40001: header.TCPFlagAck,
			40002: header.TCPFlagSyn | header.TCPFlagAck,
			40003: header.TCPFlagRst,
			40004: header.TCPFlagSyn | header.TCPFlagRst,
			40005: header.TCPFlagFin | header.TCPFlagAck,
		}
		const synPort = 40010
		before := counter(t, dir, "tcp_marked")
		sent := uint64(0)
		send := func() {
			for sport, flags := range others {
				if err := unix.Sendto(fd, tcp4(netip.AddrPortFrom(cliIP, sport), dst, flags), 0, to); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Sendto(fd, tcp4(netip.AddrPortFrom(cliIP, synPort), dst, header.TCPFlagSyn), 0, to); err != nil {
				t.Fatal(err)
			}
			sent += uint64(len(others)) + 1
		}
		seenFrom := len(r.seen)
		q := r.until(send, func(q queued) bool {
			tcp := tcpOf(q)
			return tcp != nil && tcp.SrcPort() == synPort
		})
		if tcp := tcpOf(q); tcp.Flags() != header.TCPFlagSyn || q.Mark != testMark {
			t.Errorf("queued SYN has flags %#x mark %d", tcp.Flags(), q.Mark)
		}
		// Every segment sent has passed prerouting once the mangle
		// counter has them; one more Read catches any queued late.
		waitCounter(t, dir, "tcp_marked", before+sent)
		r.poll(2 * recvTimeout)
		for _, q := range r.seen[seenFrom:] {
			if tcp := tcpOf(q); tcp != nil && tcp.Flags() != header.TCPFlagSyn {
				t.Errorf("queued a TCP segment from port %d with flags %#x", tcp.SrcPort(), tcp.Flags())
			}
		}
	})

	t.Run("NoAllocs", func(t *testing.T) {
		const n = 8
		r.poll(0)
		before := counter(t, dir, "udp_marked")
		for i := range n {
			sendUDP([]byte("alloc " + strconv.Itoa(i)))()
		}
		waitCounter(t, dir, "udp_marked", before+n)
		pkts := make([]Packet, 1)
		got := 0
		allocs := testing.AllocsPerRun(n/2-1, func() {
			k, err := c.Read(pkts)
			if err != nil {
				t.Fatal(err)
			}
			if k == 1 {
				got++
				if err := c.VerdictBatch(pkts[0].ID, Drop); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("Read+VerdictBatch allocate %v times per call", allocs)
		}
		if got != n/2 {
			t.Errorf("read %d packets in %d calls, want one each", got, n/2)
		}
		if a := testing.AllocsPerRun(10, func() { _ = c.Verdict(0xffffff00, Drop) }); a != 0 {
			t.Errorf("Verdict allocates %v times", a)
		}
		r.poll(recvTimeout) // the rest, and the refused verdicts' errors
	})

	t.Run("SetMarks", func(t *testing.T) {
		// notQueued sends a datagram, waits for prerouting to have seen
		// it, and checks that it never reaches the queue.
		notQueued := func(payload []byte) {
			t.Helper()
			before := counter(t, dir, "udp_marked")
			sendUDP(payload)()
			waitCounter(t, dir, "udp_marked", before+1)
			for _, q := range r.poll(2 * recvTimeout) {
				if bytes.Equal(udpPayload(q), payload) {
					t.Fatalf("%q queued", payload)
				}
			}
		}
		if err := rules.SetMarks(nil); err != nil {
			t.Fatal(err)
		}
		notQueued([]byte("no marks"))
		if err := rules.SetMarks([]uint32{9}); err != nil {
			t.Fatal(err)
		}
		notQueued([]byte("other mark"))
		if err := rules.SetMarks([]uint32{9, testMark, testMark}); err != nil {
			t.Fatal(err)
		}
		payload := []byte("marks again")
		r.until(sendUDP(payload), isUDP(payload))
	})

	t.Run("Close", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() {
			pkts := make([]Packet, 4)
			for {
				if _, err := c.Read(pkts); err != nil {
					errc <- err
					return
				}
			}
		}()
		start := time.Now()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after Close: %v, want ErrClosed", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Read did not return after Close")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close and Read took %v", d)
		}
		if err := c.Verdict(1, Drop); !errors.Is(err, ErrClosed) {
			t.Errorf("Verdict after Close: %v", err)
		}
		if err := c.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		// Unbound: the queue can be bound again.
		if err := dir.Do(func() error {
			c2, err := Open(Config{Queue: testQueue, Batch: 1})
			if err != nil {
				return err
			}
			return c2.Close()
		}); err != nil {
			t.Fatalf("reopen after Close: %v", err)
		}

		if err := rules.Close(); err != nil {
			t.Fatal(err)
		}
		out, err := nftIn(dir, "", "list", "tables")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, table) {
			t.Fatalf("table %s still listed after Close:\n%s", table, out)
		}
		if err := rules.SetMarks(nil); !errors.Is(err, ErrRulesClosed) {
			t.Errorf("SetMarks after Close: %v", err)
		}
	})
}
