// Package bench is `make bench`'s lab benchmark: it builds one network
// namespace lab (lab.NATTopology: client, two-armed director, two nginx
// real servers), then for each peer in turn configures the director
// namespace (plain kernel forwarding, nftables DNAT, HAProxy, kernel
// IPVS where the module exists, and uvsd), runs the same bounded loads
// from the client, restores the director and goes on to the next peer.
//
// Loads, each bounded by Config.Duration:
//
//	wrk-ka     wrk -t2 -c32 --latency, keep-alive: requests/s, p50, p99
//	wrk-close  the same with "Connection: close": new connections/s, p50,
//	           p99, and the client's TCP retransmits per 1,000 connections
//	           (wrk's latencies leave connection setup out)
//	iperf3     one TCP flow to port 5201: Gbit/s at the receiver
//	udp        the package's own AF_PACKET generator (sendmmsg batches of
//	           64 frames of 64-byte UDP payload, 1024 source ports) to port 9:
//	           packets/s delivered, counted at the real servers' eth0, and
//	           packets/s sent
//	udp-sink   the same with the real servers dropping the datagrams at
//	           their ingress hook (after veth counted them): veth runs the
//	           receiver's stack on the sending CPU, charged to uvsd, so
//	           this isolates the director's own cost per packet
//
// The client may reuse ports in TIME_WAIT (tcp_tw_reuse=1) and has every
// port: a close load otherwise runs out of ports as soon as a few percent
// of its connections close from the client's side. The FULLNAT peer has
// eight local addresses: a local endpoint stays taken for TIME_WAIT
// (2 min) after its connection, and two would run out within three runs.
//
// For uvsd it also records CPU seconds (utime+stime) per million packets
// forwarded (InPkts+OutPkts from `uvsadm -L -n --stats --exact`) and RSS.
// For every peer, the wrk loads record the whole machine's CPU time per
// request (or connection) and how busy the CPUs were (/proc/stat around
// wrk): the peers do their forwarding in different contexts (a softirq
// of the sender, a daemon's thread), and on a saturated machine the
// total per request sets the rate while idle CPUs show waiting.
//
// uvs columns: uvs (NAT, AF_PACKET receive and AF_XDP transmit, uvsd's
// default), uvs-xdp (-backend afxdp: XDP redirect to AF_XDP for receive
// too), uvs-fnat, uvs-dr, and, on request only, uvs-mmsg (sendmmsg
// transmit, -xsk-tx=false).
//
// The iperf3 service (port 5201) balances by client address (uvs "sh",
// nftables "jhash ip saddr", HAProxy "balance source") in every peer:
// iperf3 opens a control and a data connection that must reach the same
// server, which per-connection round robin does not guarantee.
//
// Report holds every run's figures; its Text, Markdown and SVG methods
// render one table (median and min–max per peer, ratio to uvs) and a
// grouped-bar chart normalised to uvs = 1. Nothing here touches the root
// namespace: all traffic stays in the lab's namespaces and every load
// stops by itself.
package bench
