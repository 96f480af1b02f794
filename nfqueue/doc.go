// Package nfqueue hands uvsd the packets that netfilter marks, for IPVS
// "fwmark" virtual services.
//
// uvs captures frames with AF_PACKET, which runs before netfilter, so it
// never sees the skb->mark that an operator's mangle PREROUTING rules set.
// Rules installs an nftables chain just after the mangle priority that
// sends the connection openers (TCP SYN without ACK or RST, and UDP) of
// packets carrying a fwmark service's mark to an NFQUEUE queue; Conn reads
// them over nfnetlink with their mark, input interface and source MAC.
// uvsd forwards them itself and gives every queued packet the verdict
// Drop, so the kernel never forwards them a second time.
//
// The netlink protocol (nfnetlink_queue.h) is implemented here on
// golang.org/x/sys/unix: ParsePacket is an allocation-free view over one
// NFQNL_MSG_PACKET message, and the Append* functions build the config
// and verdict messages. Open binds without NFQA_CFG_F_GSO on purpose: the
// kernel then completes partial checksums and segments GSO packets before
// queueing, so every Payload is a complete IPv4 packet with valid
// checksums.
//
// Both Conn and Rules act on the network namespace of the calling thread
// when they are created (Open, NewRules) and stay bound to it.
//
// Kernels built without nft_queue (CONFIG_NFT_QUEUE unset, as on the lab
// machines' kernel) reject nft's queue statement; Rules then installs the
// same two rules with the x_tables NFQUEUE target through nft_compat,
// written as nf_tables netlink messages, since nft itself cannot create
// xt expressions.
package nfqueue
