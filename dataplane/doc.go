// Package dataplane moves packets: it captures frames for the addresses
// uvs owns with AF_PACKET rings, finds or creates their connection in the
// worker's conntrack table, schedules new connections with sched, rewrites
// them with modes and transmits them in batches.
//
// A packet's path through the package:
//
//	port_linux.go  ring slot → rxFrame (virtio_net_hdr + Ethernet frame)
//	worker.go      handle: ARP and ICMP echo for owned addresses, IPv4 →
//	               conntrack lookup (either direction) → forward, or
//	               service lookup → schedule → insert → forward
//	worker.go      forward: modes rewrite, MAC rewrite, queue on the
//	               egress port (tunnel.go: TUN mode's IPIP; local.go: a
//	               real server that is this host)
//	port_linux.go  transmit: by the worker's transmit-only AF_XDP socket
//	               on the egress interface (xsk_linux.go: copied into its
//	               UMEM, partial checksums finished) where there is one,
//	               else, and always for GSO super-frames, a sendmmsg
//	               batch straight from the ring slots; then the slots go
//	               back to the kernel
//
// With the afxdp backend, an XDP program (xdp_linux.go) redirects the
// frames uvs forwards to an AF_XDP socket before the kernel sees them;
// the worker takes them from its receive ring (finishing the partial
// checksums XDP hides, partial.go) as it takes the AF_PACKET ring's.
//
// Each worker owns its ports (one per interface), its connection table and
// its counters; nothing is shared for writing between workers except the
// per-destination connection counts that schedulers read, which change once
// per connection state change.
//
// Beside the path: steer.go builds the fanout program that brings both
// legs of a connection to its worker; sync.go queues connection changes
// for the backup director and imports the master's (connsync); marks.go
// takes the packets of fwmark services, which netfilter marked after the
// ring saw them, from the daemon's NFQUEUE reader into the owner worker's
// single-producer ring (InjectMarked), and decides which of a packet's
// two copies is acted on.
//
// Schedulers that keep state (rr, wrr, lblc, lblcr) are shared by the
// workers under one mutex per service, taken once per new connection
// (shared.go), so the sequence is IPVS's.
package dataplane
