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

// Sender defaults.
const (
	DefaultInterval  = 10 * time.Millisecond
	DefaultRateBytes = 8 << 20 // bytes per second
)

// SenderConfig configures a Sender.
type SenderConfig struct {
	Conn   net.PacketConn // shared with the Receiver on the same director
	Dst    net.Addr       // the multicast group, or the peer director
	Key    []byte         // from DeriveKey
	SyncID uint8
	// MaxLen bounds a datagram's size in bytes: the path MTU less the IP
	// and UDP headers. 0 means DefaultMaxLen.
	MaxLen int
	// Queues are drained round-robin, one per packet-processing worker.
	Queues []*Queue
	// Interval is the flush period, and so the most a record waits when
	// the rate allows; 0 means DefaultInterval.
	Interval time.Duration
	// RateBytes caps the sync traffic in bytes per second, live and bulk
	// together, with bursts of up to two Intervals' worth (at least one
	// datagram). 0 means DefaultRateBytes.
	RateBytes int
	// BootID identifies this run of the sender; 0 means BootID().
	BootID uint32
	Log    *slog.Logger // nil: no logging
}

// SenderStats are a Sender's counters since it was created.
type SenderStats struct {
	Records   uint64 // records sent, live and bulk
	Datagrams uint64 // datagrams sent, all kinds
	Bytes     uint64 // UDP payload bytes sent
	// Dropped counts records the queues refused because they were full:
	// the producers outran the rate budget for longer than the queues
	// could absorb.
	Dropped  uint64
	TxErrors uint64 // datagrams the socket refused; their records are lost
}

// Sender streams the records that workers push to its queues, and bulk
// dumps of the whole table, to the peer director.
type Sender struct {
	conn    net.PacketConn
	udp     *net.UDPConn   // Conn, when it is one: sends without allocating
	dst     net.Addr       // used when udp or dstAP is not set
	dstAP   netip.AddrPort // Dst as an AddrPort, when it is a *net.UDPAddr
	key     []byte
	syncID  uint8
	bootID  uint32
	maxRecs int
	queues  []*Queue
	every   time.Duration
	log     *slog.Logger
	bucket  *bucket
	seq     atomic.Uint32
	failing atomic.Bool // the last send failed: log only the first of a run

	// Owned by Run.
	batch []Record
	pkt   []byte
	next  int // queue to start the next datagram with

	records, datagrams, bytes, txErrors atomic.Uint64
}

// NewSender checks cfg and returns a Sender; call Run to start it.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Conn == nil {
		return nil, errors.New("connsync: SenderConfig.Conn is nil")
	}
	if cfg.Dst == nil {
		return nil, errors.New("connsync: SenderConfig.Dst is nil")
	}
	if len(cfg.Key) == 0 {
		return nil, errors.New("connsync: SenderConfig.Key is empty")
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if MaxRecords(cfg.MaxLen) == 0 {
		return nil, fmt.Errorf("connsync: SenderConfig.MaxLen got %d, want at least %d", cfg.MaxLen, minDatagram)
	}
	for i, q := range cfg.Queues {
		if q == nil {
			return nil, fmt.Errorf("connsync: SenderConfig.Queues[%d] is nil", i)
		}
	}
	if cfg.Interval < 0 || cfg.RateBytes < 0 {
		return nil, fmt.Errorf("connsync: Interval %v and RateBytes %d, want non-negative", cfg.Interval, cfg.RateBytes)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.RateBytes == 0 {
		cfg.RateBytes = DefaultRateBytes
	}
	if cfg.BootID == 0 {
		cfg.BootID = processBootID
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	maxRecs := MaxRecords(cfg.MaxLen)
	burst := max(datagramLen(maxRecs), int(2*float64(cfg.RateBytes)*cfg.Interval.Seconds()))
	s := &Sender{
		conn:    cfg.Conn,
		dst:     cfg.Dst,
		key:     append([]byte(nil), cfg.Key...),
		syncID:  cfg.SyncID,
		bootID:  cfg.BootID,
		maxRecs: maxRecs,
		queues:  append([]*Queue(nil), cfg.Queues...),
		every:   cfg.Interval,
		log:     cfg.Log,
		bucket:  newBucket(cfg.RateBytes, burst, time.Now()),
		batch:   make([]Record, maxRecs),
		pkt:     make([]byte, 0, datagramLen(maxRecs)),
	}
	if u, ok := cfg.Conn.(*net.UDPConn); ok {
		if a, ok := cfg.Dst.(*net.UDPAddr); ok {
			ap := a.AddrPort()
			s.udp, s.dstAP = u, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return s, nil
}

// Run flushes the queues every Interval until ctx is done. Call it once,
// on its own goroutine: it is the queues' only consumer.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.flush(now); errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}

// flush sends full datagrams while the queues hold records and the bucket
// has bytes, then what is left over as one partial datagram, so a record
// waits at most one Interval when the rate allows. Records the bucket
// cannot pay for stay queued for the next flush.
func (s *Sender) flush(now time.Time) error {
	for {
		g := s.bucket.grant(minDatagram, datagramLen(s.maxRecs), now)
		if g == 0 {
			return nil
		}
		want := (g - overhead) / RecordLen
		n := s.gather(want)
		if n == 0 {
			s.bucket.refund(g)
			return nil
		}
		s.bucket.refund(g - datagramLen(n))
		s.pkt = Encode(s.pkt[:0], s.header(KindConns), s.batch[:n], s.key)
		if err := s.write(s.pkt, n); err != nil {
			return err
		}
		if n < want {
			return nil // the queues are empty
		}
	}
}

// gather pops up to n records into s.batch, starting each datagram with
// the next queue in turn so that one busy worker cannot starve the others
// of the budget.
func (s *Sender) gather(n int) int {
	got := 0
	for i := range s.queues {
		if got == n {
			break
		}
		got += s.queues[(s.next+i)%len(s.queues)].Pop(s.batch[got:n])
	}
	if len(s.queues) > 0 {
		s.next = (s.next + 1) % len(s.queues)
	}
	return got
}

// SendBulk sends recs, then a KindBulkEnd datagram, waiting for the rate
// budget rather than dropping: the daemon calls it with a snapshot of its
// table when a KindRequest arrives. It shares the budget with Run, so live
// updates continue, more slowly, during a dump. It may run concurrently
// with Run but not with another SendBulk of the same Sender.
func (s *Sender) SendBulk(ctx context.Context, recs []Record) error {
	pkt := make([]byte, 0, datagramLen(s.maxRecs))
	var timer *time.Timer
	wait := func(n int) error {
		for {
			d := s.bucket.take(n, time.Now())
			if d == 0 {
				return nil
			}
			if timer == nil {
				timer = time.NewTimer(d)
				defer timer.Stop()
			} else {
				timer.Reset(d)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
	}
	for len(recs) > 0 {
		n := min(len(recs), s.maxRecs)
		if err := wait(datagramLen(n)); err != nil {
			return err
		}
		pkt = Encode(pkt[:0], s.header(KindConns), recs[:n], s.key)
		if err := s.write(pkt, n); err != nil {
			return err
		}
		recs = recs[n:]
	}
	if err := wait(overhead); err != nil {
		return err
	}
	return s.write(Encode(pkt[:0], s.header(KindBulkEnd), nil, s.key), 0)
}

func (s *Sender) header(k Kind) Header {
	return Header{Kind: k, SyncID: s.syncID, BootID: s.bootID, Seq: s.seq.Add(1)}
}

// write sends one datagram carrying n records and counts it.
func (s *Sender) write(pkt []byte, n int) error {
	var err error
	if s.udp != nil {
		_, err = s.udp.WriteToUDPAddrPort(pkt, s.dstAP)
	} else {
		_, err = s.conn.WriteTo(pkt, s.dst)
	}
	if err != nil {
		s.txErrors.Add(1)
		if !s.failing.Swap(true) {
			s.log.Warn("connsync: send failed", "dst", s.dst.String(), "err", err)
		}
		return err
	}
	if s.failing.Swap(false) {
		s.log.Info("connsync: sending again", "dst", s.dst.String())
	}
	s.datagrams.Add(1)
	s.records.Add(uint64(n))
	s.bytes.Add(uint64(len(pkt)))
	return nil
}

// Stats returns the Sender's counters. It may be called from any
// goroutine.
func (s *Sender) Stats() SenderStats {
	st := SenderStats{
		Records:   s.records.Load(),
		Datagrams: s.datagrams.Load(),
		Bytes:     s.bytes.Load(),
		TxErrors:  s.txErrors.Load(),
	}
	for _, q := range s.queues {
		st.Dropped += q.Dropped()
	}
	return st
}
