// Package nexthop finds where frames for an IPv4 address go: the egress
// interface and gateway from the kernel's routing table, and the next hop's
// MAC from its neighbour table, or from an ARP exchange of uvs's own when
// the kernel does not know it. The dataplane never asks per packet: the
// daemon resolves every real server ahead of time and publishes the result
// in the service snapshot.
package nexthop
