package dataplane

import (
	"fmt"
	"sync/atomic"
)

// counter is written by one worker and read by anyone: a plain load and
// store (no locked instruction) is enough for a single writer.
type counter struct{ v atomic.Uint64 }

func (c *counter) add(n uint64) { c.v.Store(c.v.Load() + n) }
func (c *counter) load() uint64 { return c.v.Load() }

// ipvsCounters are IPVS's per-service and per-destination counters.
type ipvsCounters struct {
	conns, inPkts, outPkts, inBytes, outBytes counter
}

// Totals is a sum of counters over workers.
type Totals struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

func (t *Totals) addFrom(c *ipvsCounters) {
	t.Conns += c.conns.load()
	t.InPkts += c.inPkts.load()
	t.OutPkts += c.outPkts.load()
	t.InBytes += c.inBytes.load()
	t.OutBytes += c.outBytes.load()
}

// dropReason names why a frame was dropped. Every drop is counted under
// exactly one reason.
type dropReason uint8

const (
	dropTruncated    dropReason = iota // ring slot shorter than the frame, or headers cut short
	dropVLAN                           // tagged frame: VLANs are not served
	dropBadIPv4                        // IPv4 header fails validation
	dropIPOptions                      // IPv4 options on a packet to a VIP
	dropFragment                       // fragment of a packet to a VIP (no reassembly)
	dropBadL4                          // TCP/UDP header fails validation
	dropNoConn                         // non-SYN TCP to a VIP with no connection
	dropNoService                      // to an owned address, no service on that port
	dropNoDest                         // the scheduler found no available server
	dropTableFull                      // connection table full: new connection refused
	dropTupleClash                     // a new connection's reply tuple is already in use
	dropNoNextHop                      // the server's MAC is not resolved yet
	dropTTL                            // TTL expired on a forwarded reply
	dropICMPNoConn                     // ICMP error quoting no known connection
	dropUnknownProto                   // IP protocol uvs does not serve, to a VIP
	dropTx                             // the kernel refused the frame on transmit
	dropTooBig                         // larger than the tunnel's MTU (answered with frag-needed when DF)
	dropNoLocalPort                    // FULLNAT: no free local port (or no local address)
	dropStandby                        // a service whose VRRP instance is not MASTER here
	dropLocal                          // the host's stack refused a packet for a local real server
	dropDestGone                       // a connection's real server was removed (IPVS: not available)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"truncated", "vlan", "bad_ipv4", "ip_options", "fragment", "bad_l4", "no_conn", "no_service",
	"no_dest", "table_full", "tuple_clash", "no_nexthop", "ttl_expired", "icmp_no_conn",
	"unknown_proto", "tx", "too_big", "no_local_port", "standby", "local", "dest_unavailable",
}

func (r dropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("dropReason(%d)", uint8(r))
}

// workerStats are one worker's counters.
type workerStats struct {
	rxFrames, txFrames, ignored, arpReplies, echoReplies, icmpErrors counter
	// misdirected counts TCP/UDP packets that reached a worker other
	// than the one the steering program names for them: always 0 when
	// steering works.
	misdirected counter
	fragNeeded  counter
	// fromPeer counts new connections' packets that another director of
	// our VRRP instances had scheduled already: left to the host.
	fromPeer counter
	// localOut counts packets handed to this host's stack for a real
	// server that is this host.
	localOut counter
	// Connection sync: records queued for the backup, dropped because
	// the queue was full, received and inserted, received for a service
	// or server this director does not have, refused by a full table.
	syncOut, syncDropped, syncIn, syncNoService, syncRefused counter
	// Firewall marks (marks.go): packets taken from the mark ring,
	// marked copies left to the ring's copy, ring copies left to the
	// queue.
	markIn, markDup, markDeferred counter
	// reserved counts FULLNAT local endpoints kept taken after a reused
	// client port replaced their connection.
	reserved counter
	drops    [numDropReasons]counter
	// by service ID and destination ID; replaced (grown) by the worker
	// when a snapshot brings new IDs.
	svc  atomic.Pointer[[]ipvsCounters]
	dest atomic.Pointer[[]ipvsCounters]
}

func grow(p *atomic.Pointer[[]ipvsCounters], n int) []ipvsCounters {
	old := p.Load()
	if old != nil && len(*old) >= n {
		return *old
	}
	s := make([]ipvsCounters, n+n/2+8)
	if old != nil {
		for i := range *old {
			o, c := &(*old)[i], &s[i]
			c.conns.add(o.conns.load())
			c.inPkts.add(o.inPkts.load())
			c.outPkts.add(o.outPkts.load())
			c.inBytes.add(o.inBytes.load())
			c.outBytes.add(o.outBytes.load())
		}
	}
	p.Store(&s)
	return s
}

// Counters is a snapshot of the dataplane's own counters, summed over
// workers.
type Counters struct {
	RxFrames, TxFrames, Ignored, ARPReplies, EchoReplies, ICMPErrors uint64
	Misdirected                                                      uint64
	RingOverruns                                                     uint64 // frames the kernel dropped: receive ring full
	FromPeer, LocalOut                                               uint64
	SyncOut, SyncDropped, SyncIn, SyncNoService, SyncRefused         uint64
	MarkIn, MarkDup, MarkDeferred                                    uint64
	Reserved                                                         uint64
	Drops                                                            map[string]uint64
	PerWorkerRx                                                      []uint64
	// XSK sums the AF_XDP sockets' counters; PerWorkerXSKTx is each
	// worker's completed AF_XDP transmits.
	XSK            XSKStats
	PerWorkerXSKTx []uint64
}

// XSKStats are AF_XDP sockets' counters: the frames uvs took from their
// receive rings and the kernel completed from their transmit rings, and
// the kernel's XDP_STATISTICS.
type XSKStats struct {
	Rx, Tx                          uint64
	RxDropped, RxInvalid, TxInvalid uint64
	RxRingFull, FillRingEmpty       uint64
	TxRingEmpty                     uint64
}

func (s *XSKStats) add(o XSKStats) {
	s.Rx += o.Rx
	s.Tx += o.Tx
	s.RxDropped += o.RxDropped
	s.RxInvalid += o.RxInvalid
	s.TxInvalid += o.TxInvalid
	s.RxRingFull += o.RxRingFull
	s.FillRingEmpty += o.FillRingEmpty
	s.TxRingEmpty += o.TxRingEmpty
}
