package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	Conn   net.PacketConn
	Key    []byte // from DeriveKey
	SyncID uint8
	// Handle gets each accepted KindConns datagram, on the Run goroutine;
	// recs (and h) are valid only during the call. nil discards them.
	Handle func(h *Header, recs []Record)
	// OnRequest is called, on the Run goroutine, when a peer asks for the
	// whole table; from is where to answer. It should hand the dump to
	// another goroutine rather than block the receiver.
	OnRequest func(from net.Addr)
	// OnBulkEnd is called, on the Run goroutine, when a dump ends.
	OnBulkEnd func()
	// BootID identifies this run in the requests it sends; 0 means
	// BootID().
	BootID uint32
	Log    *slog.Logger // nil: no logging
}

// ReceiverStats are a Receiver's counters since it was created.
type ReceiverStats struct {
	Datagrams uint64 // accepted, all kinds
	Records   uint64 // records handed to Handle
	Requests  uint64 // KindRequest datagrams
	BulkEnds  uint64 // KindBulkEnd datagrams
	// Reordered counts sender datagrams whose sequence was not above the
	// highest seen from the same boot ID: reordered, duplicated or
	// replayed. They are accepted all the same.
	Reordered uint64
	// Restarts counts changes of the sender's boot ID: the master
	// restarted, or another director took over.
	Restarts uint64
	Drops    [NumDropReasons]uint64 // refused datagrams by reason; Drops[DropNone] is 0
}

// counter is written by the Run goroutine only and read by anyone, so a
// load and a store are enough.
type counter struct{ v atomic.Uint64 }

func (c *counter) add(n uint64) { c.v.Store(c.v.Load() + n) }
func (c *counter) load() uint64 { return c.v.Load() }

// Receiver decodes the sync datagrams that arrive on its Conn.
type Receiver struct {
	conn      net.PacketConn
	udp       *net.UDPConn // Conn, when it is one: reads without allocating
	key       []byte
	syncID    uint8
	bootID    uint32
	handle    func(h *Header, recs []Record)
	onRequest func(from net.Addr)
	onBulkEnd func()
	log       *slog.Logger
	seq       atomic.Uint32 // of the requests this receiver sends

	// Owned by Run.
	buf      []byte
	recs     []Record
	hdr      Header
	peerBoot uint32 // 0 until the first sender datagram
	peerSeq  uint32 // highest sequence seen from peerBoot

	datagrams, records, requests, bulkEnds, reordered, restarts counter
	drops                                                       [NumDropReasons]counter
}

// NewReceiver returns a Receiver; call Run to start it. Conn and Key are
// required.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.Conn == nil {
		panic("connsync: ReceiverConfig.Conn got nil, want a socket")
	}
	if len(cfg.Key) == 0 {
		panic("connsync: ReceiverConfig.Key got empty, want a key from DeriveKey")
	}
	if cfg.BootID == 0 {
		cfg.BootID = processBootID
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		conn:      cfg.Conn,
		key:       append([]byte(nil), cfg.Key...),
		syncID:    cfg.SyncID,
		bootID:    cfg.BootID,
		handle:    cfg.Handle,
		onRequest: cfg.OnRequest,
		onBulkEnd: cfg.OnBulkEnd,
		log:       cfg.Log,
		buf:       make([]byte, 1<<16), // the largest UDP payload: larger ones must not be truncated into looking short
		recs:      make([]Record, MaxCount),
	}
	r.udp, _ = cfg.Conn.(*net.UDPConn)
	return r
}

// Run reads and dispatches datagrams until ctx is done or Conn is closed,
// and then returns nil; it returns an error only when a read fails
// otherwise. It unblocks its read by setting Conn's read deadline, which
// it clears when it starts. Call it once at a time.
func (r *Receiver) Run(ctx context.Context) error {
	if err := r.conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("connsync: clear read deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { r.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		var (
			n    int
			ap   netip.AddrPort
			from net.Addr
			err  error
		)
		if r.udp != nil {
			n, ap, err = r.udp.ReadFromUDPAddrPort(r.buf)
		} else {
			n, from, err = r.conn.ReadFrom(r.buf)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("connsync: receive: %w", err)
		}
		r.dispatch(r.buf[:n], ap, from)
	}
}

// dispatch handles one datagram from ap (a *net.UDPConn) or from.
func (r *Receiver) dispatch(pkt []byte, ap netip.AddrPort, from net.Addr) {
	n, reason := Decode(pkt, r.key, r.syncID, &r.hdr, r.recs)
	if reason != DropNone {
		c := &r.drops[reason]
		if c.load() == 0 {
			// The first of each kind is worth a look (a bad MAC is
			// usually a secret that differs between the directors);
			// the rest are only counted, as a flood would be.
			r.log.Warn("connsync: dropped datagram", "reason", reason.String(), "from", addrString(ap, from), "len", len(pkt))
		}
		c.add(1)
		return
	}
	r.datagrams.add(1)
	switch r.hdr.Kind {
	case KindConns:
		r.track(&r.hdr)
		r.records.add(uint64(n))
		if r.handle != nil {
			r.handle(&r.hdr, r.recs[:n])
		}
	case KindRequest:
		r.requests.add(1)
		if from == nil {
			from = net.UDPAddrFromAddrPort(ap)
		}
		r.log.Info("connsync: peer requests a bulk dump", "from", from.String())
		if r.onRequest != nil {
			r.onRequest(from)
		}
	case KindBulkEnd:
		r.track(&r.hdr)
		r.bulkEnds.add(1)
		if r.onBulkEnd != nil {
			r.onBulkEnd()
		}
	}
}

// track follows the sender's boot ID and sequence. Requests are left out:
// they come from the peer's receiver, whose boot ID is not the sender's.
func (r *Receiver) track(h *Header) {
	switch {
	case h.BootID != r.peerBoot:
		if r.peerBoot != 0 {
			r.restarts.add(1)
		}
		r.log.Info("connsync: new sender", "boot_id", h.BootID, "previous", r.peerBoot)
		r.peerBoot, r.peerSeq = h.BootID, h.Seq
	case int32(h.Seq-r.peerSeq) <= 0: // serial-number order survives wraparound
		r.reordered.add(1)
	default:
		r.peerSeq = h.Seq
	}
}

func addrString(ap netip.AddrPort, from net.Addr) string {
	if from != nil {
		return from.String()
	}
	return ap.String()
}

// Request sends a KindRequest to dst from the Receiver's Conn, asking the
// master for its whole table; the dump arrives through Handle and ends
// with OnBulkEnd. It may be called from any goroutine.
func (r *Receiver) Request(dst net.Addr) error {
	h := Header{Kind: KindRequest, SyncID: r.syncID, BootID: r.bootID, Seq: r.seq.Add(1)}
	if _, err := r.conn.WriteTo(Encode(nil, h, nil, r.key), dst); err != nil {
		return fmt.Errorf("connsync: request: %w", err)
	}
	return nil
}

// Stats returns the Receiver's counters. It may be called from any
// goroutine.
func (r *Receiver) Stats() ReceiverStats {
	st := ReceiverStats{
		Datagrams: r.datagrams.load(),
		Records:   r.records.load(),
		Requests:  r.requests.load(),
		BulkEnds:  r.bulkEnds.load(),
		Reordered: r.reordered.load(),
		Restarts:  r.restarts.load(),
	}
	for i := range st.Drops {
		st.Drops[i] = r.drops[i].load()
	}
	return st
}
