package connsync

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := ListenUnicast(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Paced traffic never fills this, but under -race the receiver can
	// fall behind a burst.
	_ = c.SetReadBuffer(1 << 20)
	return c
}

// pair is a master socket with a Sender and a backup socket with a
// Receiver, both running until the test ends.
type pair struct {
	sender   *Sender
	receiver *Receiver
	master   *net.UDPConn
	backup   *net.UDPConn
	mu       sync.Mutex
	got      map[uint32]Record // by Timeout, which the tests make unique
	bulkEnd  chan struct{}
}

func newPair(t *testing.T, scfg SenderConfig) *pair {
	t.Helper()
	p := &pair{master: listen(t), backup: listen(t), got: map[uint32]Record{}, bulkEnd: make(chan struct{}, 1)}
	scfg.Conn, scfg.Dst, scfg.Key, scfg.SyncID = p.master, p.backup.LocalAddr(), testKey, 7
	s, err := NewSender(scfg)
	if err != nil {
		t.Fatal(err)
	}
	p.sender = s
	p.receiver = NewReceiver(ReceiverConfig{
		Conn: p.backup, Key: testKey, SyncID: 7,
		Handle: func(h *Header, recs []Record) {
			p.mu.Lock()
			for _, r := range recs {
				p.got[r.Timeout] = r
			}
			p.mu.Unlock()
		},
		OnBulkEnd: func() { p.bulkEnd <- struct{}{} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := p.receiver.Run(ctx); err != nil {
			t.Errorf("Receiver.Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func (p *pair) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoopback pushes 10,000 records through two queues from two
// producer goroutines, within the rate budget, and expects every one at
// the receiver, intact.
func TestLoopback(t *testing.T) {
	const perQueue = 5000
	qs := []*Queue{NewQueue(8192), NewQueue(8192)}
	p := newPair(t, SenderConfig{Queues: qs, RateBytes: 1 << 20})
	var wg sync.WaitGroup
	for w, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perQueue {
				r := rec(i)
				r.Timeout = uint32(w*perQueue + i)
				if !q.Push(&r) {
					t.Errorf("queue %d refused record %d", w, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "10,000 records", 20*time.Second, func() bool { return p.count() == 2*perQueue })
	p.mu.Lock()
	for id, r := range p.got {
		want := rec(int(id % perQueue))
		want.Timeout = id
		if r != want {
			t.Errorf("record %d: %+v, want %+v", id, r, want)
		}
	}
	p.mu.Unlock()
	st, rs := p.sender.Stats(), p.receiver.Stats()
	if st.Records != 2*perQueue || st.Dropped != 0 || st.TxErrors != 0 {
		t.Errorf("sender stats %+v", st)
	}
	if rs.Records != 2*perQueue || rs.Datagrams != st.Datagrams || rs.Drops != [NumDropReasons]uint64{} {
		t.Errorf("receiver stats %+v, sender sent %d datagrams", rs, st.Datagrams)
	}
	if min := uint64(2*perQueue+MaxRecords(0)-1) / uint64(MaxRecords(0)); st.Datagrams > min+min/2 {
		t.Errorf("%d datagrams for %d records, want close to %d: datagrams are not packed", st.Datagrams, 2*perQueue, min)
	}
}

// TestStorm pushes far more than a tiny rate budget carries: the queues
// refuse the excess and count it, nothing else buffers records, and what
// is sent stays within the budget.
func TestStorm(t *testing.T) {
	const rate = 4096 // bytes/s: the burst is one datagram
	qs := []*Queue{NewQueue(256), NewQueue(256)}
	p := newPair(t, SenderConfig{Queues: qs, RateBytes: rate, Interval: time.Millisecond})
	start := time.Now()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	const perQueue = 200_000
	var wg sync.WaitGroup
	var refused atomic.Uint64
	for w, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perQueue {
				r := rec(i)
				r.Timeout = uint32(w*perQueue + i)
				if !q.Push(&r) {
					refused.Add(1)
				}
				if n := q.Len(); n > q.Cap() {
					t.Errorf("queue holds %d records, capacity %d", n, q.Cap())
					return
				}
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&ms1)
	time.Sleep(50 * time.Millisecond) // let the sender run rate-limited for a while

	st := p.sender.Stats()
	if st.Dropped != refused.Load() || st.Dropped == 0 {
		t.Errorf("Dropped = %d, producers saw %d refusals", st.Dropped, refused.Load())
	}
	// The sender may be between a Pop and its send: retry until the
	// books balance.
	waitFor(t, "sent + dropped + queued = pushed", 5*time.Second, func() bool {
		st = p.sender.Stats()
		return st.Records+st.Dropped+uint64(qs[0].Len()+qs[1].Len()) == 2*perQueue
	})
	// Measured after the last Stats, so that the budget covers every
	// byte st counts.
	elapsed := time.Since(start).Seconds()
	if budget := float64(datagramLen(MaxRecords(0))) + rate*elapsed; float64(st.Bytes) > budget {
		t.Errorf("sent %d bytes in %.2fs, budget %.0f", st.Bytes, elapsed, budget)
	}
	// 400,000 records would be 16 MB if anything buffered them.
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes during the storm, want the queues to be the only buffer", grew)
	}
	waitFor(t, "the sent records", 5*time.Second, func() bool { return uint64(p.count()) >= st.Records-uint64(MaxRecords(0)) })
}

// TestBulk runs the daemon's exchange: a backup that has just started
// requests the table, the master answers with a paced dump and a
// KindBulkEnd.
func TestBulk(t *testing.T) {
	p := newPair(t, SenderConfig{RateBytes: 1 << 20})
	table := recs(3000)
	for i := range table {
		table[i].Timeout = uint32(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bulkErr := make(chan error, 1)
	var asked atomic.Pointer[net.UDPAddr]
	master := NewReceiver(ReceiverConfig{
		Conn: p.master, Key: testKey, SyncID: 7,
		OnRequest: func(from net.Addr) {
			asked.Store(from.(*net.UDPAddr))
			go func() { bulkErr <- p.sender.SendBulk(ctx, table) }()
		},
	})
	done := make(chan error, 1)
	go func() { done <- master.Run(ctx) }()

	if err := p.receiver.Request(p.master.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.bulkEnd:
	case <-time.After(20 * time.Second):
		t.Fatal("no bulk end")
	}
	if err := <-bulkErr; err != nil {
		t.Fatalf("SendBulk: %v", err)
	}
	if got, want := asked.Load().AddrPort(), p.backup.LocalAddr().(*net.UDPAddr).AddrPort(); got.Addr().Unmap() != want.Addr().Unmap() || got.Port() != want.Port() {
		t.Errorf("request from %v, want %v", got, want)
	}
	if p.count() != len(table) {
		t.Fatalf("backup holds %d records, want %d", p.count(), len(table))
	}
	if ms := master.Stats(); ms.Requests != 1 || ms.Datagrams != 1 {
		t.Errorf("master receiver stats %+v", ms)
	}
	if rs := p.receiver.Stats(); rs.BulkEnds != 1 || rs.Records != uint64(len(table)) || rs.Reordered != 0 {
		t.Errorf("backup receiver stats %+v", rs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("master Run: %v", err)
	}
}

func TestSendBulkCancel(t *testing.T) {
	c := listen(t)
	s, err := NewSender(SenderConfig{Conn: c, Dst: listen(t).LocalAddr(), Key: testKey, RateBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// 1000 bytes/s: the first datagram goes out of the burst, the
	// second waits over a second.
	if err := s.SendBulk(ctx, recs(100)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SendBulk = %v, want deadline exceeded", err)
	}
	if st := s.Stats(); st.Datagrams != 1 {
		t.Fatalf("sent %d datagrams, want 1", st.Datagrams)
	}
}

// TestReceiverDrops feeds crafted datagrams to a receiver and checks
// that each is counted under its reason and none reaches Handle.
func TestReceiverDrops(t *testing.T) {
	backup, attacker := listen(t), listen(t)
	var handled atomic.Int64
	r := NewReceiver(ReceiverConfig{Conn: backup, Key: testKey, SyncID: 7, Handle: func(*Header, []Record) { handled.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	good := Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 5}, recs(1), testKey)
	send := func(b []byte) {
		if _, err := attacker.WriteTo(b, backup.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	send([]byte("short"))
	send(Encode(nil, Header{Kind: KindConns, SyncID: 8, BootID: 1, Seq: 1}, recs(1), testKey))
	send(Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 1, Seq: 2}, recs(1), DeriveKey("guess", 7)))
	send(good)
	send(good)                                                                                 // replayed: accepted, counted as reordered
	send(Encode(nil, Header{Kind: KindConns, SyncID: 7, BootID: 2, Seq: 1}, recs(1), testKey)) // restarted master
	waitFor(t, "six datagrams", 5*time.Second, func() bool {
		st := r.Stats()
		return st.Datagrams+st.Drops[DropShort]+st.Drops[DropWrongSyncID]+st.Drops[DropBadMAC] == 6
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	want := ReceiverStats{Datagrams: 3, Records: 3, Reordered: 1, Restarts: 1}
	want.Drops[DropShort], want.Drops[DropWrongSyncID], want.Drops[DropBadMAC] = 1, 1, 1
	if st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	if handled.Load() != 3 {
		t.Fatalf("Handle called %d times, want 3", handled.Load())
	}
}

// TestReceiverStop checks both ways Run ends, and that a stopped
// receiver's socket can be run again.
func TestReceiverStop(t *testing.T) {
	c, peer := listen(t), listen(t)
	r := NewReceiver(ReceiverConfig{Conn: c, Key: testKey})
	// reading waits until Run has read one more datagram: it is in its
	// read loop, with the deadline an earlier stop set cleared.
	var read uint64
	reading := func() {
		t.Helper()
		read++
		if _, err := peer.WriteTo([]byte("short"), c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "Run to read a datagram", 5*time.Second, func() bool { return r.Stats().Drops[DropShort] == read })
	}
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		reading()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	reading()
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
}

// fakeConn is a net.PacketConn that records what is written, for the
// Sender's generic (non-UDPConn) path.
type fakeConn struct {
	net.PacketConn
	mu   sync.Mutex
	pkts [][]byte
}

func (f *fakeConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	f.mu.Lock()
	f.pkts = append(f.pkts, append([]byte(nil), b...))
	f.mu.Unlock()
	return len(b), nil
}

func TestSenderFlushFairAndPacked(t *testing.T) {
	fc := &fakeConn{}
	qs := []*Queue{NewQueue(1024), NewQueue(1024)}
	s, err := NewSender(SenderConfig{Conn: fc, Dst: &net.UDPAddr{}, Key: testKey, SyncID: 7, Queues: qs, BootID: 42})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r := rec(i)
		qs[0].Push(&r)
	}
	for i := range 10 {
		r := rec(1000 + i)
		qs[1].Push(&r)
	}
	if err := s.flush(time.Now()); err != nil {
		t.Fatal(err)
	}
	// 110 records: three full datagrams of 32 and one of 14.
	var sizes []int
	var h Header
	out := make([]Record, MaxCount)
	fromQ1 := 0
	for i, pkt := range fc.pkts {
		n, r := Decode(pkt, testKey, 7, &h, out)
		if r != DropNone {
			t.Fatalf("datagram %d: %v", i, r)
		}
		if h.BootID != 42 || h.Seq != uint32(i+1) {
			t.Errorf("datagram %d: header %+v", i, h)
		}
		sizes = append(sizes, n)
		for _, r := range out[:n] {
			if r.CPort >= 41000 {
				fromQ1++
			}
		}
		if i == 1 && fromQ1 != 10 {
			t.Errorf("after two datagrams %d of queue 1's 10 records sent: one busy queue starved the other", fromQ1)
		}
	}
	if want := []int{32, 32, 32, 14}; !slices.Equal(sizes, want) {
		t.Errorf("datagram sizes %v, want %v", sizes, want)
	}
}

func TestNewSenderErrors(t *testing.T) {
	c := &fakeConn{}
	dst := &net.UDPAddr{}
	for _, cfg := range []SenderConfig{
		{Dst: dst, Key: testKey},
		{Conn: c, Key: testKey},
		{Conn: c, Dst: dst},
		{Conn: c, Dst: dst, Key: testKey, MaxLen: minDatagram - 1},
		{Conn: c, Dst: dst, Key: testKey, Queues: []*Queue{nil}},
		{Conn: c, Dst: dst, Key: testKey, RateBytes: -1},
	} {
		if _, err := NewSender(cfg); err == nil {
			t.Errorf("NewSender(%+v) accepted", cfg)
		}
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(1000, 1500, t0)
	if g := b.grant(100, 2000, t0); g != 1500 {
		t.Fatalf("grant from a full bucket = %d, want the burst 1500", g)
	}
	if g := b.grant(1, 10, t0); g != 0 {
		t.Fatalf("grant from an empty bucket = %d", g)
	}
	if d := b.take(500, t0); d != 500*time.Millisecond {
		t.Fatalf("take 500 of 0 at 1000/s: wait %v, want 500ms", d)
	}
	if d := b.take(500, t0.Add(500*time.Millisecond)); d != 0 {
		t.Fatalf("take after the wait: %v", d)
	}
	b.refund(700)
	if g := b.grant(1, 5000, t0.Add(10*time.Second)); g != 1500 {
		t.Fatalf("grant after a long idle = %d, want the burst", g)
	}
}
