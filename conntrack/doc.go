// Package conntrack is a worker's connection table: IPVS's connection
// entries, its TCP state table and timeouts, in flat, pointer-free arrays
// so that millions of entries cost the garbage collector nothing.
//
// Every connection is indexed under its original tuple (as the client
// sends: CIP:cport→VIP:vport) and its reply tuple (as the real server
// sends: RIP:rport→CIP:cport for NAT), so one lookup finds it from either
// side and says which side matched. The index is open addressing with
// linear probing and backward-shift deletion (no tombstones); entries
// live in one slice with a free list. A table belongs to one worker and
// is not safe for concurrent use.
package conntrack
