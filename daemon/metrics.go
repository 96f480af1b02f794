package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/uvs-project/uvs/connsync"
	"github.com/uvs-project/uvs/dataplane"
	"github.com/uvs-project/uvs/vrrp"
)

// serveMetrics serves Prometheus text exposition on addr until ctx is
// done. The IPVS metrics carry node_exporter's ipvs collector names and
// labels, so dashboards built for kernel IPVS work unchanged.
func (d *Daemon) serveMetrics(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		d.writeMetrics(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

func (d *Daemon) writeMetrics(w io.Writer) {
	svcs := d.list()
	var tot [5]uint64
	for _, s := range svcs {
		tot[0] += s.Stats.Conns
		tot[1] += s.Stats.InPkts
		tot[2] += s.Stats.OutPkts
		tot[3] += s.Stats.InBytes
		tot[4] += s.Stats.OutBytes
	}
	counter := func(name, help string, v uint64) { writeCounter(w, name, help, v) }
	counter("node_ipvs_connections_total", "The total number of connections made.", tot[0])
	counter("node_ipvs_incoming_packets_total", "The total number of incoming packets.", tot[1])
	counter("node_ipvs_outgoing_packets_total", "The total number of outgoing packets.", tot[2])
	counter("node_ipvs_incoming_bytes_total", "The total amount of incoming data.", tot[3])
	counter("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.", tot[4])
	gauges := []struct {
		name, help string
		val        func(i, j int) int64
	}{
		{"node_ipvs_backend_connections_active", "The current active connections by local and remote address.",
			func(i, j int) int64 { return int64(svcs[i].Dests[j].ActiveConns) }},
		{"node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.",
			func(i, j int) int64 { return int64(svcs[i].Dests[j].InactConns) }},
		{"node_ipvs_backend_weight", "The current backend weight by local and remote address.",
			func(i, j int) int64 { return int64(svcs[i].Dests[j].Weight) }},
	}
	for _, g := range gauges {
		writeHeader(w, g.name, g.help, "gauge")
		for i, s := range svcs {
			laddr, lport, mark, proto := s.Addr.String(), strconv.Itoa(int(s.Port)), "", s.Proto
			if s.FWMark != 0 {
				laddr, lport, mark, proto = "", "0", strconv.Itoa(int(s.FWMark)), ""
			}
			for j, dd := range s.Dests {
				fmt.Fprintf(w, "%s{local_address=%q,local_mark=%q,local_port=%q,proto=%q,remote_address=%q,remote_port=%q} %d\n",
					g.name, laddr, mark, lport, proto, dd.Addr.String(), strconv.Itoa(int(dd.Port)), g.val(i, j))
			}
		}
	}
	c := d.engine.Counters()
	counter("uvs_dataplane_rx_frames_total", "Frames taken from the receive rings.", c.RxFrames)
	counter("uvs_dataplane_tx_frames_total", "Frames the kernel accepted for transmit.", c.TxFrames)
	counter("uvs_dataplane_ignored_frames_total", "Frames not for uvs (left to the kernel).", c.Ignored)
	counter("uvs_dataplane_arp_replies_total", "ARP replies sent for owned addresses.", c.ARPReplies)
	counter("uvs_dataplane_echo_replies_total", "ICMP echo replies sent for owned addresses.", c.EchoReplies)
	counter("uvs_dataplane_icmp_errors_total", "ICMP errors translated for tracked connections.", c.ICMPErrors)
	counter("uvs_dataplane_ring_overruns_total", "Frames the kernel dropped because a receive ring was full.", c.RingOverruns)
	counter("uvs_dataplane_misdirected_total", "Packets that reached a worker other than their connection's owner.", c.Misdirected)
	writeHeader(w, "uvs_dataplane_drops_total", "Frames dropped, by reason.", "counter")
	reasons := make([]string, 0, len(c.Drops))
	for r := range c.Drops {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "uvs_dataplane_drops_total{reason=%q} %d\n", r, c.Drops[r])
	}
	writeHeader(w, "uvs_dataplane_worker_rx_frames_total", "Frames received, by worker.", "counter")
	for i, v := range c.PerWorkerRx {
		fmt.Fprintf(w, "uvs_dataplane_worker_rx_frames_total{worker=\"%d\"} %d\n", i, v)
	}
	writeXSKMetrics(w, &c)
	d.writeVRRPMetrics(w, &c)
	d.writeMarkMetrics(w, &c)
	writeCounter(w, "uvs_fullnat_reservations_total", "FULLNAT local endpoints kept taken for a TIME_WAIT period after a reused client port replaced their connection.", c.Reserved)
}

// writeXSKMetrics writes the AF_XDP sockets' counters (the afxdp
// backend's, or the transmit-only sockets'; zero without any).
func writeXSKMetrics(w io.Writer, c *dataplane.Counters) {
	x := &c.XSK
	writeCounter(w, "uvs_xsk_rx_frames_total", "Frames taken from the AF_XDP receive rings.", x.Rx)
	writeCounter(w, "uvs_xsk_tx_frames_total", "Frames the kernel completed from the AF_XDP transmit rings.", x.Tx)
	writeHeader(w, "uvs_xsk_kernel_drops_total", "Frames the kernel's AF_XDP code dropped or refused (XDP_STATISTICS), by reason.", "counter")
	for _, r := range []struct {
		name string
		v    uint64
	}{
		{"rx_dropped", x.RxDropped}, {"rx_invalid", x.RxInvalid}, {"tx_invalid", x.TxInvalid},
		{"rx_ring_full", x.RxRingFull}, {"fill_ring_empty", x.FillRingEmpty},
	} {
		fmt.Fprintf(w, "uvs_xsk_kernel_drops_total{reason=%q} %d\n", r.name, r.v)
	}
	writeHeader(w, "uvs_xsk_worker_tx_frames_total", "Frames the kernel completed from the AF_XDP transmit rings, by worker.", "counter")
	for i, v := range c.PerWorkerXSKTx {
		fmt.Fprintf(w, "uvs_xsk_worker_tx_frames_total{worker=\"%d\"} %d\n", i, v)
	}
}

// writeHeader writes the HELP and TYPE lines of metric name, whose
// samples follow.
func writeHeader(w io.Writer, name, help, typ string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// writeCounter writes one unlabelled counter in Prometheus text format.
func writeCounter(w io.Writer, name, help string, v uint64) {
	writeHeader(w, name, help, "counter")
	fmt.Fprintf(w, "%s %d\n", name, v)
}

// keepalived's SNMP numbering of VRRP states.
func vrrpStateNumber(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 1
	case vrrp.StateMaster:
		return 2
	case vrrp.StateFault:
		return 3
	}
	return 0
}

// writeVRRPMetrics adds the VRRP instances and connection sync.
func (d *Daemon) writeVRRPMetrics(w io.Writer, c *dataplane.Counters) {
	counter := func(name, help string, v uint64) { writeCounter(w, name, help, v) }
	counter("uvs_dataplane_local_delivered_total", "Packets handed to this host's stack for a real server that is this host.", c.LocalOut)
	counter("uvs_dataplane_from_peer_total", "New-connection packets another director had scheduled to this host, left to the host.", c.FromPeer)
	counter("uvs_sync_records_queued_total", "Connection changes queued for the backup.", c.SyncOut)
	counter("uvs_sync_records_dropped_total", "Connection changes dropped: a worker's sync queue was full.", c.SyncDropped)
	counter("uvs_sync_records_imported_total", "Connections received from the master and inserted or refreshed.", c.SyncIn)
	counter("uvs_sync_records_unknown_total", "Received connections of a service or server this director does not have.", c.SyncNoService)
	counter("uvs_sync_records_refused_total", "Received connections refused by a full table.", c.SyncRefused)
	if s := d.sync; s != nil {
		ss, rs := s.snd.Stats(), s.rcv.Stats()
		counter("uvs_sync_records_sent_total", "Connection records sent to the backup.", ss.Records)
		counter("uvs_sync_datagrams_sent_total", "Sync datagrams sent.", ss.Datagrams)
		counter("uvs_sync_tx_errors_total", "Sync datagrams the socket refused.", ss.TxErrors)
		counter("uvs_sync_datagrams_received_total", "Sync datagrams accepted.", rs.Datagrams)
		counter("uvs_sync_records_received_total", "Connection records received.", rs.Records)
		writeHeader(w, "uvs_sync_datagrams_dropped_total", "Sync datagrams refused, by reason.", "counter")
		for r := range connsync.NumDropReasons {
			if v := rs.Drops[r]; v != 0 {
				fmt.Fprintf(w, "uvs_sync_datagrams_dropped_total{reason=%q} %d\n", connsync.DropReason(r).String(), v)
			}
		}
	}
	m := d.vrrp
	if m == nil {
		return
	}
	gauge := func(name, help string, val func(vi *vinst) uint64, typ string) {
		writeHeader(w, name, help, typ)
		for _, vi := range m.insts {
			fmt.Fprintf(w, "%s{instance=%q} %d\n", name, vi.cfg.Name, val(vi))
		}
	}
	gauge("uvs_vrrp_state", "VRRP state: 0 init, 1 backup, 2 master, 3 fault.",
		func(vi *vinst) uint64 { return uint64(vrrpStateNumber(vrrp.State(vi.state.Load()))) }, "gauge")
	gauge("uvs_vrrp_adverts_received_total", "Adverts accepted.", func(vi *vinst) uint64 { return vi.rx.Load() }, "counter")
	gauge("uvs_vrrp_adverts_sent_total", "Adverts sent.", func(vi *vinst) uint64 { return vi.tx.Load() }, "counter")
	gauge("uvs_vrrp_transitions_total", "State transitions.", func(vi *vinst) uint64 { return vi.transitions.Load() }, "counter")
	writeHeader(w, "uvs_vrrp_adverts_dropped_total", `Adverts ignored, by reason (instance "": no instance took them).`, "counter")
	for r := range vrrp.NumReasons {
		if v := m.drops[r].Load(); v != 0 {
			fmt.Fprintf(w, "uvs_vrrp_adverts_dropped_total{instance=\"\",reason=%q} %d\n", vrrp.Reason(r).String(), v)
		}
		for _, vi := range m.insts {
			if v := vi.reasons[r].Load(); v != 0 {
				fmt.Fprintf(w, "uvs_vrrp_adverts_dropped_total{instance=%q,reason=%q} %d\n", vi.cfg.Name, vrrp.Reason(r).String(), v)
			}
		}
	}
}
