// Package vrrp is the protocol core of uvs's keepalived replacement: VRRP
// advertisements (version 2, RFC 3768, and version 3, RFC 5798, IPv4
// only), the gratuitous ARP a new master sends, and the per-instance state
// machine of RFC 5798 section 6 with keepalived's additions (nopreempt,
// preempt_delay, track weights, FAULT, vrrp_sync_group).
//
// Nothing here opens a socket, starts a goroutine or reads the clock. The
// daemon owns the I/O: it parses what arrives with ParseAdvert, hands an
// accepted advert to Instance.Receive, calls Instance.Tick when the
// instance's Deadline has passed, and carries out the Actions every call
// returns (send an advert, add or remove the virtual addresses, send
// gratuitous ARPs, run notify scripts). Time is always an argument, so the
// state machine is tested with a fake clock and behaves the same under
// test as in production.
//
// An Instance that belongs to a Group returns the actions of the whole
// group from each of its methods, so the caller carries them out without
// knowing about groups.
//
// Drops are named: every reason a packet is discarded is a Reason, which
// indexes a counter array of NumReasons entries.
package vrrp
