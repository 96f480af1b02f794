// Package conntrack is a worker's connection table, with IPVS's
// semantics: its connection entries, TCP state table, timeouts and
// active/inactive counting rule.
//
// A Table belongs to one worker goroutine and has no locks. Its entries
// are Conn values in one flat array allocated by New, with no pointers
// in them, so millions of connections cost the garbage collector
// nothing to mark; Lookup, Insert, Delete, Reap and Conn.Advance do not
// allocate. The capacity is fixed: when it is reached, Insert refuses
// new connections with ErrFull and the existing ones carry on.
//
// Every connection is indexed under its original tuple (as the client
// sends: CIP:cport→VIP:vport) and its reply tuple (as the real server
// sends: RIP:rport→CIP:cport for NAT, RIP:rport→LIP:lport for FULLNAT),
// so one Lookup finds it from either side and says which side matched.
// The index is open addressing over a flat array, seeded-hashed, with
// linear probing and backward-shift deletion (no tombstones).
//
// As in IPVS, a connection stays in the table until its timer fires:
// Lookup finds expired entries too, and the incremental reaper (Reap)
// removes them a slice of the table at a time. Listing for another
// goroutine goes through a copy the owner makes (AppendSnapshot).
//
// The state machine follows ip_vs_proto_tcp.c and ip_vs_proto_udp.c:
// TCPNext is set_tcp_state's table walk, Conn.Advance applies it with
// the per-state Timeouts and keeps FlagInactive, and Timeouts.SetIPVSADM
// is ipvsadm --set.
package conntrack
