package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/nexthop"
)

// Connection sync between directors, as keepalived's lvs_sync_daemon
// drives IPVS's: the director whose sync instance is MASTER sends, the
// others receive. A director that becomes BACKUP (at start, too) asks the
// master for its whole table, and holds off preempting until that dump
// has arrived or bulkWait has passed, so that taking over again never
// loses the connections it did not see.

// bulkWait bounds how long a backup waits for the master's table before
// it may preempt anyway.
const bulkWait = 3 * time.Second

// bulkMax bounds a bulk dump.
const bulkMax = 1 << 20

// syncQueue is each worker's sync queue, in records.
const syncQueue = 1 << 14

// refreshEvery is how often the master re-sends its whole table (paced
// by the sender's rate limit), so that a connection that stays in one
// state longer than its timeout, an idle ESTABLISHED one, does not expire
// on the backup; IPVS's sync_refresh_period does the same.
const refreshEvery = 60 * time.Second

type syncer struct {
	d      *Daemon
	conn   *net.UDPConn
	dst    *net.UDPAddr
	snd    *connsync.Sender
	rcv    *connsync.Receiver
	master atomic.Bool
	// clientIf caches, per virtual address, the interface its clients
	// are behind; only the receiver goroutine uses it.
	clientIf map[[4]byte]int32
	bulking  atomic.Bool
}

// syncSecret is what the sync key is derived from: the followed
// instance's auth_pass, so that only directors of one cluster agree.
func syncSecret(cfg *config.Config, sd *config.LVSSyncDaemon) string {
	for _, vi := range cfg.VRRPInstances {
		if vi.Name == sd.Instance {
			return vi.AuthPass
		}
	}
	return ""
}

func syncID(cfg *config.Config, sd *config.LVSSyncDaemon) uint8 {
	if sd.SyncID != 0 {
		return sd.SyncID
	}
	for _, vi := range cfg.VRRPInstances {
		if vi.Name == sd.Instance {
			return vi.VirtualRouterID
		}
	}
	return 0
}

func newSyncer(d *Daemon, cfg *config.Config) (*syncer, error) {
	sd := cfg.Global.LVSSyncDaemon
	group := sd.Group
	if !group.IsValid() {
		group = connsync.DefaultGroup
	}
	port := sd.Port
	if port == 0 {
		port = connsync.DefaultPort
	}
	// A TTL of 0 is ListenMulticast's default of 1.
	conn, err := connsync.ListenMulticast(sd.Interface, group, port, int(sd.TTL))
	if err != nil {
		return nil, fmt.Errorf("lvs_sync_daemon on %s: %w", sd.Interface, err)
	}
	id := syncID(cfg, sd)
	key := connsync.DeriveKey(syncSecret(cfg, sd), id)
	s := &syncer{d: d, conn: conn, dst: &net.UDPAddr{IP: group.AsSlice(), Port: int(port)}, clientIf: map[[4]byte]int32{}}
	s.snd, err = connsync.NewSender(connsync.SenderConfig{
		Conn: conn, Dst: s.dst, Key: key, SyncID: id, MaxLen: int(sd.MaxLen), // 0: DefaultMaxLen
		Queues: d.engine.SyncQueues(), Log: d.log.With("part", "sync"),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.rcv = connsync.NewReceiver(connsync.ReceiverConfig{
		Conn: conn, Key: key, SyncID: id, Log: d.log.With("part", "sync"),
		Handle:    s.handle,
		OnRequest: s.onRequest,
		OnBulkEnd: s.onBulkEnd,
	})
	return s, nil
}

func (s *syncer) run(ctx context.Context) {
	go s.snd.Run(ctx)
	go s.refresh(ctx)
	if err := s.rcv.Run(ctx); err != nil && ctx.Err() == nil {
		s.d.log.Error("sync receiver", "err", err)
	}
	s.conn.Close()
}

// setMaster follows the sync instance's VRRP state.
func (s *syncer) setMaster(master bool) {
	s.master.Store(master)
	s.d.engine.SetSyncMaster(master)
	if master {
		return
	}
	// A new backup asks the master for everything, and must not
	// preempt before it has it.
	if v := s.d.vrrp; v != nil {
		v.holdPreempt(true)
		time.AfterFunc(bulkWait, func() { v.holdPreempt(false) })
	}
	if err := s.rcv.Request(s.dst); err != nil {
		s.d.log.Warn("sync: asking the master for its table", "err", err)
	}
}

func (s *syncer) handle(h *connsync.Header, recs []connsync.Record) {
	if s.master.Load() {
		return // two masters for a moment: ours is the table that counts
	}
	if n := s.d.engine.Import(recs, s.vipIf); n > 0 {
		s.d.log.Debug("sync: records refused, workers busy", "n", n)
	}
}

// vipIf is the interface the clients of a virtual address are behind:
// the one its route leaves by.
func (s *syncer) vipIf(vaddr [4]byte) int32 {
	if i, ok := s.clientIf[vaddr]; ok {
		return i
	}
	var idx int32
	if h, err := nexthop.Route(netip.AddrFrom4(vaddr)); err == nil {
		idx = int32(h.Ifindex)
	}
	s.clientIf[vaddr] = idx
	return idx
}

func (s *syncer) onRequest(from net.Addr) {
	go s.bulk(from.String())
}

func (s *syncer) refresh(ctx context.Context) {
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.bulk("refresh")
		}
	}
}

// bulk sends the whole table, once at a time, when this director is the
// sync master.
func (s *syncer) bulk(why string) {
	if !s.master.Load() || !s.bulking.CompareAndSwap(false, true) {
		return
	}
	defer s.bulking.Store(false)
	ctx, cancel := context.WithTimeout(s.d.ctx, 2*refreshEvery)
	defer cancel()
	recs, err := s.d.engine.SyncSnapshot(ctx, bulkMax)
	if err != nil {
		s.d.log.Warn("sync: bulk dump", "err", err)
		return
	}
	if err := s.snd.SendBulk(ctx, recs); err != nil {
		s.d.log.Warn("sync: bulk dump", "err", err)
		return
	}
	s.d.log.Info("sync: sent the connection table", "for", why, "records", len(recs))
}

func (s *syncer) onBulkEnd() {
	if s.master.Load() {
		return
	}
	s.d.log.Info("sync: connection table received from the master")
	if v := s.d.vrrp; v != nil {
		v.holdPreempt(false)
	}
}
