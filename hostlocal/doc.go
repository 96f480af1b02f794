// Package hostlocal lets a uvs director also be a real server of its own
// services (LVS-DR "directors as real servers").
//
// Such a director has each VIP on its loopback (kernel-owned, with
// arp_ignore=1 and arp_announce=2) so that its local servers accept VIP
// connections. uvs's AF_PACKET capture does not steal frames, so without
// help the director's kernel would also answer every client connection
// that uvs forwards elsewhere. Two pieces fix that:
//
//   - Guard, an nftables netdev ingress filter on a client-facing
//     interface, drops IPv4 frames to the VIPs unless their Ethernet
//     source is a peer director's MAC (a peer that scheduled the packet to
//     this host as a real server). AF_PACKET taps run before the netdev
//     ingress hook, so uvs still sees every frame.
//   - Injector, a TUN device, hands the IP packets of connections that uvs
//     schedules to its own host to the local stack; replies leave through
//     the host's normal routes, straight to the client as in DR.
//
// Both act on the network namespace of the calling thread when they are
// created (OpenInjector, NewGuard) and stay bound to it: a Guard runs every
// later nft command in that namespace whichever goroutine calls it.
package hostlocal
