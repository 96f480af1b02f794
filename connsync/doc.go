// Package connsync streams connection entries from the MASTER director to
// the BACKUP, as IPVS's sync daemon does, so that after a VRRP failover the
// new master forwards established connections to the same real servers.
//
// # Data flow
//
// Each packet-processing worker owns one Queue and pushes a Record whenever
// a connection is created or changes state. Push never blocks and never
// allocates: when the queue is full the record is dropped and counted. A
// Sender drains every queue each Interval, packs the records into full
// datagrams and sends them within a token bucket of RateBytes per second.
// Records the bucket cannot carry yet stay in their queue, so a burst up to
// the queues' capacity is absorbed without loss, and a sustained storm is
// shed at Push: the queues are the only place records wait, and their
// capacity bounds the memory sync uses whatever the connection rate.
//
// A Receiver on the backup decodes datagrams and hands the records to the
// daemon's Handle callback. A backup that has just started sends a
// KindRequest (Receiver.Request); the master answers with Sender.SendBulk,
// a dump of its whole table paced by the same token bucket and closed by a
// KindBulkEnd datagram.
//
// # Wire format
//
// One UDP datagram carries a 16-byte header, Count records of 44 bytes and
// a 16-byte MAC, all integers big endian. With the default 1472-byte limit
// (a 1500-byte MTU less the IPv4 and UDP headers) a datagram holds 32
// records in 1440 bytes; a 33rd would make it 1484.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Magic "UVSC"                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Version (2)  |     Kind      |    Sync ID    |     Count     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Boot ID                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Sequence                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Count records of 44 bytes                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        MAC: HMAC-SHA256 of all the above, first 16 bytes      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Kind is KindConns (Count ≥ 1), KindRequest or KindBulkEnd (Count 0).
// Sync ID plays the role of IPVS's syncid: several director pairs can share
// a multicast group, and a receiver drops the other pairs' datagrams. Boot
// ID is random per process, so a receiver can tell that the master
// restarted; Sequence counts datagrams per sender. A one-byte Count caps a
// datagram at 255 records (11252 bytes), more than a 9000-byte jumbo frame
// holds. A datagram of another version is dropped before anything else in
// it is read (DropBadVersion), so a director of an older build is told
// apart rather than refused for its length or misread: version 1 had
// 40-byte records without the firewall mark.
//
// One record:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Proto     |     State     |      Fwd      |    Netmask    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Flags             |         Client port           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Client address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   Virtual service address                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Virtual port          |       Real server port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Real server address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Local address (FULLNAT, else 0)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Local port           |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Client-side next hop MAC                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Timeout (seconds left)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Firewall mark (0: a service with an address)         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A fwmark service (virtual_server fwmark N) has no address, so its
// connections carry the mark, as IPVS's version 1 sync protocol carries it
// in an option: the receiver finds the service by the mark, and Virtual
// service address and port are what the client connected to (a
// persistence template's are the mark written as an IPv4 address and port
// 0, IPVS's key for it).
//
// Every bit pattern of a record is accepted: State, Fwd and Flags are
// opaque here and interpreted by the daemon, so a decoded datagram
// re-encodes to the same bytes.
//
// # Authentication
//
// The MAC authenticates the datagram with a key both directors share; a
// datagram that fails it is dropped before its kind or records are looked
// at. DeriveKey turns the cluster's secret (the VRRP instance's auth_pass,
// or a uvs-specific sync secret) and the sync ID into the key, so the two
// directors of one cluster agree without configuring a second secret and
// director pairs with different sync IDs get different keys.
//
// Replays are not rejected: UDP reorders, and a replayed entry only
// refreshes a connection the master did announce. A receiver counts
// datagrams whose sequence is not above the highest seen from the same boot
// ID (ReceiverStats.Reordered) and boot ID changes (ReceiverStats.Restarts),
// which is cheap and enough to notice either.
//
// # Transport
//
// ListenMulticast opens the socket IPVS's sync daemon would use (group
// 224.0.0.81, port 8848, TTL 1) for both sending and receiving;
// ListenUnicast is for pairs that cannot use multicast. Sender and Receiver
// take any net.PacketConn, so tests run over 127.0.0.1; multicast itself is
// exercised by the namespace end-to-end tests.
package connsync
