// Package modes holds the packet rewrites of uvs's forwarding modes, in
// IPVS's terms. NAT (LVS-NAT) is here: the destination of client→VIP
// packets becomes a real server (NATIn), the source of the real server's
// replies becomes the VIP again (NATOut), ICMP errors that quote a
// connection are translated like the packets they quote (NATICMPIn,
// NATICMPOut), and the VIP answers pings (EchoReply).
//
// The building blocks, RewriteDst and RewriteSrc, change one endpoint
// (address and port) of a TCP or UDP packet; FULLNAT will use both on one
// packet, DR and TUN none of them.
//
// Every rewrite works in place on a frame that passed the header package's
// IsValid gates, changes headers only (a TSO/GSO super-frame's payload is
// never read), never allocates and fixes checksums incrementally
// (RFC 1624). What the transport checksum field holds decides how it is
// fixed, and the caller says which it is with a CsumMode: a frame taken
// from a packet socket with PACKET_VNET_HDR often carries a partial
// checksum (virtio_net_hdr flag NEEDS_CSUM) that the kernel completes on
// transmit; see CsumMode.
package modes
