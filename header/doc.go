// Package header gives typed views over the bytes of the headers uvs reads
// and rewrites: Ethernet, ARP, IPv4, TCP, UDP, ICMPv4 and the virtio_net_hdr
// that PACKET_VNET_HDR puts in front of every frame.
//
// A view is a byte slice with methods (type IPv4 []byte): it owns nothing
// and copies nothing. Getters return values and never allocate; setters
// write raw fields and leave checksums alone unless their name says
// otherwise (DecTTLWithChecksumUpdate).
//
// Fixed-offset accessors index the slice directly and panic on a slice
// shorter than the header: call the view's IsValid gate once on untrusted
// input before any other method. Methods that return variable-length parts
// (IPv4.Payload, ICMPv4.Payload) clamp to the bytes present instead.
//
// Checksums follow RFC 1071. Checksum returns the folded ones'-complement
// sum, not its complement, so sums over disjoint parts combine with
// ChecksumCombine; a header's checksum field holds the complement of the
// sum. The incremental helpers implement RFC 1624 eqn. 3 for NAT-style
// rewrites, in two flavours: ChecksumUpdate* for a complemented field (a
// complete checksum) and SumUpdate* for an uncomplemented one (the partial
// pseudo-header sum that a CHECKSUM_PARTIAL frame carries in its TCP or UDP
// checksum field, see VirtioNetHdr).
//
// Addresses are [4]byte (IPv4 only for now) and MAC addresses [6]byte, so
// that they compare with == and live in pointer-free tables.
package header
