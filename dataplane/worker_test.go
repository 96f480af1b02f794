package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/uvs-project/uvs/conntrack"
	"github.com/uvs-project/uvs/header"
	"github.com/uvs-project/uvs/service"
	"golang.org/x/sys/unix"
)

func unsafeBytes(p *byte, n int) []byte { return unsafe.Slice(p, n) }

// A worker without sockets: two ports (client side, server side) whose
// transmit batches the tests read instead of sending.

var (
	clientMAC = [6]byte{2, 0, 0, 0, 0, 1}
	d0MAC     = [6]byte{2, 0, 0, 0, 0, 0xd0}
	d1MAC     = [6]byte{2, 0, 0, 0, 0, 0xd1}
	rsMAC     = [6]byte{2, 0, 0, 0, 0, 0x11}
	vip       = netip.MustParseAddrPort("198.18.0.100:80")
	cip       = netip.MustParseAddrPort("198.18.0.1:40000")
	rip1      = netip.MustParseAddr("198.19.0.11")
	rip2      = netip.MustParseAddr("198.19.0.12")
)

func fakePort(ifindex int, mac [6]byte, batch int) *port {
	p := &port{fd: -1, ifindex: ifindex, mac: mac, tx: make([]mmsghdr, batch), txIov: make([]unix.Iovec, batch)}
	for i := range p.tx {
		p.tx[i].hdr.Iov = &p.txIov[i]
		p.tx[i].hdr.Iovlen = 1
	}
	return p
}

// queued returns the frames a port has queued, and empties its batch.
func queued(p *port) [][]byte {
	var out [][]byte
	for i := 0; i < p.txN; i++ {
		iov := p.txIov[i]
		b := unsafeBytes(iov.Base, int(iov.Len))
		out = append(out, bytes.Clone(b))
	}
	p.txN = 0
	return out
}

func testWorker(tb testing.TB, sched string) (*worker, *port, *port) {
	tb.Helper()
	m := service.NewModel()
	key := service.Key{Proto: 6, Addr: vip.Addr().As4(), Port: vip.Port()}
	if err := m.AddService(service.ServiceConfig{Key: key, Sched: sched}); err != nil {
		tb.Fatal(err)
	}
	for _, r := range []netip.Addr{rip1, rip2} {
		if err := m.AddDest(key, service.DestConfig{Addr: r.As4(), Port: 8080, Weight: 1}); err != nil {
			tb.Fatal(err)
		}
		m.SetNextHop(r.As4(), service.NextHop{Ifindex: 2, MAC: rsMAC, Valid: true})
	}
	return testWorkerWith(m, 1<<16)
}

// testWorkerWith is a single socketless worker over model m with a
// table of ctCap entries.
func testWorkerWith(m *service.Model, ctCap int) (*worker, *port, *port) {
	return withPorts(&worker{model: m, batch: 64, ct: conntrack.New(ctCap, 1), nworkers: 1})
}

// withPorts gives w two fake ports, the clients' (ifindex 1) and the
// servers' (2), and adopts its model's snapshot.
func withPorts(w *worker) (*worker, *port, *port) {
	pc, ps := fakePort(1, d0MAC, 64), fakePort(2, d1MAC, 64)
	w.ports = []*port{pc, ps}
	w.adopt(w.model.Snapshot())
	return w, pc, ps
}

// tcpFrame builds [vnet | Ethernet | IPv4 | TCP] with valid checksums.
func tcpFrame(tb testing.TB, src, dst netip.AddrPort, dstMAC [6]byte, syn, ack bool, payload int) []byte {
	tb.Helper()
	var flags uint8
	if syn {
		flags |= header.TCPFlagSyn
	}
	if ack {
		flags |= header.TCPFlagAck
	}
	return tcpFlagsFrame(tb, src, dst, dstMAC, flags, payload)
}

// tcpFlagsFrame is tcpFrame with any TCP flags (FIN, RST too).
func tcpFlagsFrame(tb testing.TB, src, dst netip.AddrPort, dstMAC [6]byte, flags uint8, payload int) []byte {
	tb.Helper()
	eth := &layers.Ethernet{SrcMAC: clientMAC[:], DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Window: 1000, Seq: 1,
		FIN: flags&header.TCPFlagFin != 0, SYN: flags&header.TCPFlagSyn != 0, RST: flags&header.TCPFlagRst != 0, ACK: flags&header.TCPFlagAck != 0}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true},
		eth, ip, tcp, gopacket.Payload(make([]byte, payload))); err != nil {
		tb.Fatal(err)
	}
	return append(make([]byte, vnetHdrLen), buf.Bytes()...)
}

func decode(tb testing.TB, b []byte) (*layers.Ethernet, *layers.IPv4, *layers.TCP) {
	tb.Helper()
	p := gopacket.NewPacket(b[vnetHdrLen:], layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || ip == nil || tcp == nil {
		tb.Fatalf("not Ethernet/IPv4/TCP: %v", p)
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	if r, err := tcp.ComputeChecksum(); err != nil || r != 0 {
		tb.Fatalf("TCP checksum invalid (residue %#x, %v)", r, err)
	}
	return eth, ip, tcp
}

// TestWorkerNATBothWays follows a connection through the worker: the SYN
// is scheduled and rewritten to the real server, the SYN-ACK back to the
// client, with MACs from the conntrack entry and checksums gopacket
// accepts.
func TestWorkerNATBothWays(t *testing.T) {
	w, pc, ps := testWorker(t, "rr")
	syn := tcpFrame(t, cip, vip, d0MAC, true, false, 0)
	w.handle(pc, rxFrame{buf: syn})
	out := queued(ps)
	if len(out) != 1 {
		t.Fatalf("%d frames queued to the servers, want 1", len(out))
	}
	eth, ip, tcp := decode(t, out[0])
	if !bytes.Equal(eth.SrcMAC, d1MAC[:]) || !bytes.Equal(eth.DstMAC, rsMAC[:]) {
		t.Errorf("MACs %v -> %v", eth.SrcMAC, eth.DstMAC)
	}
	rip, _ := netip.AddrFromSlice(ip.DstIP)
	if ip.SrcIP.String() != cip.Addr().String() || (rip != rip1 && rip != rip2) || tcp.DstPort != 8080 || tcp.SrcPort != 40000 {
		t.Fatalf("rewritten to %v:%d -> %v:%d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
	}
	reply := tcpFrame(t, netip.AddrPortFrom(rip, 8080), cip, d1MAC, true, true, 0)
	w.handle(ps, rxFrame{buf: reply})
	back := queued(pc)
	if len(back) != 1 {
		t.Fatalf("%d frames queued to the client, want 1", len(back))
	}
	eth, ip, tcp = decode(t, back[0])
	if ip.SrcIP.String() != "198.18.0.100" || tcp.SrcPort != 80 || ip.DstIP.String() != "198.18.0.1" || tcp.DstPort != 40000 {
		t.Fatalf("reply rewritten to %v:%d -> %v:%d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
	}
	if !bytes.Equal(eth.DstMAC, clientMAC[:]) || ip.TTL != 63 {
		t.Errorf("reply to MAC %v TTL %d, want the client's MAC and TTL 63", eth.DstMAC, ip.TTL)
	}
	// A non-SYN without a connection is dropped and counted.
	w.handle(pc, rxFrame{buf: tcpFrame(t, netip.MustParseAddrPort("198.18.0.9:1"), vip, d0MAC, false, true, 0)})
	if got := w.stats.drops[dropNoConn].load(); got != 1 || len(queued(ps)) != 0 {
		t.Errorf("no_conn drops %d, want 1 and nothing queued", got)
	}
}

// FuzzWorkerHandle feeds arbitrary frames to a worker: nothing may panic,
// and whatever it queues must still be a parseable frame.
func FuzzWorkerHandle(f *testing.F) {
	f.Add(tcpFrame(f, cip, vip, d0MAC, true, false, 0))
	f.Add(tcpFrame(f, cip, vip, d0MAC, false, true, 100))
	f.Add(tcpFrame(f, netip.AddrPortFrom(rip1, 8080), cip, d1MAC, true, true, 0))
	f.Add(append(make([]byte, vnetHdrLen), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 100))
	w, pc, ps := testWorker(f, "rr")
	f.Fuzz(func(t *testing.T, b []byte) {
		buf := bytes.Clone(b)
		w.handle(pc, rxFrame{buf: buf})
		w.handle(ps, rxFrame{buf: bytes.Clone(b)})
		for _, q := range append(queued(pc), queued(ps)...) {
			if len(q) < vnetHdrLen+header.EthernetMinimumSize {
				t.Fatalf("queued a %d-byte frame", len(q))
			}
		}
	})
}

// BenchmarkPipeline is one established packet through parse, conntrack
// lookup, rewrite, MAC rewrite and queueing; and a new connection's SYN
// through schedule and insert as well.
func BenchmarkPipeline(b *testing.B) {
	b.Run("established", func(b *testing.B) {
		w, pc, ps := testWorker(b, "rr")
		syn := tcpFrame(b, cip, vip, d0MAC, true, false, 0)
		w.handle(pc, rxFrame{buf: bytes.Clone(syn)})
		ps.txN = 0
		pkt := tcpFrame(b, cip, vip, d0MAC, false, true, 64)
		work := make([]byte, len(pkt))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copy(work, pkt)
			w.handle(pc, rxFrame{buf: work})
			ps.txN = 0
		}
	})
	b.Run("new-connection", func(b *testing.B) {
		w, pc, ps := testWorker(b, "rr")
		pkt := tcpFrame(b, cip, vip, d0MAC, true, false, 0)
		work := make([]byte, len(pkt))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copy(work, pkt)
			// A fresh client endpoint each time.
			ip := header.IPv4(work[vnetHdrLen+header.EthernetMinimumSize:])
			src := ip.Src()
			src[2], src[3] = byte(i>>8), byte(i)
			ip.SetSrc(src)
			ip.SetChecksum(ip.CalculateChecksum())
			header.TCP(ip.Payload()).SetSrcPort(uint16(i >> 16))
			w.handle(pc, rxFrame{buf: work})
			ps.txN = 0
			if w.ct.Len() > 60000 {
				b.StopTimer()
				w.ct = conntrack.New(1<<16, 1)
				b.StartTimer()
			}
		}
	})
}

func TestPipelineZeroAllocs(t *testing.T) {
	w, pc, ps := testWorker(t, "wrr")
	syn := tcpFrame(t, cip, vip, d0MAC, true, false, 0)
	w.handle(pc, rxFrame{buf: bytes.Clone(syn)})
	ps.txN = 0
	pkt := tcpFrame(t, cip, vip, d0MAC, false, true, 64)
	work := make([]byte, len(pkt))
	allocs := testing.AllocsPerRun(1000, func() {
		copy(work, pkt)
		w.handle(pc, rxFrame{buf: work})
		ps.txN = 0
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per established packet", allocs)
	}
}
