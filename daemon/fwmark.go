package daemon

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/nfqueue"
	"github.com/uvs-project/uvs/service"
)

// Firewall-mark services (virtual_server fwmark N, ipvsadm -f). The
// operator's netfilter rules set the marks, as they do for IPVS; uvsd's
// own table queues, after the mangle hook, the TCP openers and UDP
// packets carrying a mark of one of its services, and the dataplane
// forwards them (dataplane/marks.go). Every queued packet gets the
// verdict drop: uvs has sent it, the kernel must not.

// DefaultFWMarkQueue is the NFQUEUE number uvsd uses unless told.
const DefaultFWMarkQueue = 30070

// markTable is uvsd's nftables table for the queue rule.
const markTable = "uvs_fwmark"

// markRetry is how long a failed queue setup waits before it is tried
// again (the nft binary or nfnetlink_queue may be missing).
const markRetry = 5 * time.Second

// markSlots is each worker's ring of marked packets.
const markSlots = 256

// fwmarkQueue is the open queue and its rule.
type fwmarkQueue struct {
	rules *nfqueue.Rules
	conn  *nfqueue.Conn
	marks []uint32
}

// runMarks keeps the queue rule's marks equal to the fwmark services of
// the model, opening the queue when the first one appears, and reads it.
func (d *Daemon) runMarks(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var (
		q       *fwmarkQueue
		last    *service.Snapshot
		retryAt time.Time
		readers = make(chan struct{})
	)
	defer func() {
		if q != nil {
			q.conn.Close()
			<-readers
			if err := q.rules.Close(); err != nil {
				d.log.Error("fwmark rules", "err", err)
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := d.model.Snapshot()
		if s == last {
			continue
		}
		if q == nil {
			if len(s.Marks) == 0 || time.Now().Before(retryAt) {
				continue
			}
			var err error
			if q, err = openFWMarkQueue(d.opts.FWMarkQueue); err != nil {
				d.log.Error("fwmark services get no traffic", "err", err, "retry", markRetry)
				retryAt = time.Now().Add(markRetry)
				q = nil
				continue
			}
			d.marks.Store(q)
			go func() { defer close(readers); d.readMarks(q.conn) }()
		}
		if !slices.Equal(q.marks, s.Marks) {
			if err := q.rules.SetMarks(s.Marks); err != nil {
				d.log.Error("fwmark rules", "err", err)
				continue
			}
			d.log.Info("fwmark queue", "queue", d.opts.FWMarkQueue, "marks", s.Marks)
			q.marks = slices.Clone(s.Marks)
		}
		last = s
	}
}

func openFWMarkQueue(num uint16) (*fwmarkQueue, error) {
	rules, err := nfqueue.NewRules(markTable, num)
	if err != nil {
		return nil, err
	}
	conn, err := nfqueue.Open(nfqueue.Config{Queue: num})
	if err != nil {
		rules.Close()
		return nil, err
	}
	return &fwmarkQueue{rules: rules, conn: conn}, nil
}

// readMarks hands queued packets to the dataplane until the queue is
// closed. The verdict for a batch is one message: drop, every one.
func (d *Daemon) readMarks(c *nfqueue.Conn) {
	pkts := make([]nfqueue.Packet, 64)
	for {
		n, err := c.Read(pkts)
		if err != nil {
			if !errors.Is(err, nfqueue.ErrClosed) {
				d.log.Error("fwmark queue", "err", err)
			}
			return
		}
		if n == 0 {
			continue
		}
		var last uint32
		for i := range pkts[:n] {
			p := &pkts[i]
			if p.HasHwAddr {
				d.engine.InjectMarked(int32(p.InIf), p.HwAddr, p.Mark, p.Payload)
			}
			last = max(last, p.ID)
		}
		d.engine.Wake()
		if err := c.VerdictBatch(last, nfqueue.Drop); err != nil {
			d.log.Error("fwmark verdict", "err", err)
		}
	}
}

// writeMarkMetrics adds the fwmark queue's counters.
func (d *Daemon) writeMarkMetrics(w io.Writer, c *dataplane.Counters) {
	writeCounter(w, "uvs_fwmark_packets_total", "Marked packets the dataplane took from the queue.", c.MarkIn)
	writeCounter(w, "uvs_fwmark_duplicates_total", "Marked packets whose capture-ring copy was the one acted on.", c.MarkDup)
	writeCounter(w, "uvs_fwmark_deferred_total", "Captured packets left to their marked copy.", c.MarkDeferred)
	ms := d.engine.MarkCounters()
	writeCounter(w, "uvs_fwmark_refused_total", "Marked packets refused: a worker's ring was full, or the interface or packet was not ours.", ms.Full+ms.BadIface+ms.Invalid)
	if q := d.marks.Load(); q != nil {
		writeCounter(w, "uvs_fwmark_queue_packets_total", "Packets read from the netfilter queue.", q.conn.Stats().Packets)
	}
}
