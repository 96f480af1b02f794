package conntrack

// Tuple is what a packet says about its flow: IPv4 addresses, ports and
// protocol, as they appear in the packet. It is comparable, holds 13
// bytes of data and no pointers.
type Tuple struct {
	Src, Dst     [4]byte
	SPort, DPort uint16
	Proto        uint8
}

// Conn flags.
const (
	// FlagInactive is IPVS's IP_VS_CONN_F_INACTIVE: the connection
	// counts in its destination's inactive connections, not its active
	// ones. Init sets it; Advance keeps it.
	FlagInactive uint16 = 1 << iota
	// FlagTemplate marks a persistence template (IP_VS_CONN_F_TEMPLATE).
	// Templates count in neither active nor inactive connections and
	// are not advanced.
	FlagTemplate
	// FlagNoOutput is IPVS's IP_VS_CONN_F_NOOUTPUT, which the kernel
	// sets on connections to DR and TUN destinations: while it is set,
	// Advance reads Input packets with the InputOnly table; the first
	// Output packet clears it.
	FlagNoOutput
	// FlagSynced marks a connection received from the sync master that
	// has not yet seen a packet of its client here: its client-side
	// interface is a guess until then.
	FlagSynced
	// FlagFwmark marks a connection of a firewall-mark service: its
	// client's connection openers come through the netfilter queue,
	// which carries the mark, not through the capture rings.
	FlagFwmark
	// FlagReserved marks an entry that only holds a FULLNAT local
	// endpoint towards a real server (its reply tuple) after its
	// connection was replaced early: the server may still hold the
	// tuple in TIME_WAIT. No packet is forwarded on it.
	FlagReserved
)

// IsReserved reports whether the entry is a FULLNAT port reservation.
func (c *Conn) IsReserved() bool { return c.Flags&FlagReserved != 0 }

const protoUDP = 17

// Conn is one connection (IPVS's struct ip_vs_conn). It holds no
// pointers, slices, strings or interfaces, so a table of millions of
// them is invisible to the garbage collector.
type Conn struct {
	// Orig is the tuple as received from the client
	// (CIP:cport→VIP:vport).
	Orig Tuple
	// Reply is the tuple as received from the real server
	// (RIP:rport→CIP:cport for NAT, RIP:rport→LIP:lport for FULLNAT).
	Reply Tuple
	// Svc and Dest are the service model's stable IDs.
	Svc  uint32
	Dest uint32
	// Control is the ID+1 of the persistence template that controls
	// this connection (0: none); set it with Table.Bind. NControl counts,
	// on a template, the live connections it controls; the reaper
	// re-arms rather than removes a template while it is non-zero.
	Control  uint32
	NControl uint32
	// TimeoutSec is a template's persistence timeout in seconds
	// (templates only); seconds in 32 bits keep the entry at 96 bytes.
	TimeoutSec uint32
	// Expires is when the connection's timer runs out, in monotonic ns.
	Expires   int64
	ClientIf  int32
	DestIf    int32
	ClientMAC [6]byte
	DestMAC   [6]byte
	Fwd       uint8
	State     State
	Flags     uint16

	next   uint32 // free list link (index+1, 0: end), or live
	gen    uint32 // bumped each time the entry is freed
	ctlGen uint32 // gen of the template Control named when bound
}

// Inactive reports whether the connection counts as inactive for its
// destination.
func (c *Conn) Inactive() bool { return c.Flags&FlagInactive != 0 }

// IsTemplate reports whether c is a persistence template.
func (c *Conn) IsTemplate() bool { return c.Flags&FlagTemplate != 0 }

// Expired reports whether the connection's timer has run out. Nothing
// removes an expired connection but the reaper or the owner: until then
// lookups still find it, as IPVS keeps a connection until its timer
// fires.
func (c *Conn) Expired(now int64) bool { return now >= c.Expires }

// Init prepares a new connection as IPVS binds it to a destination: in
// the inactive count (the destination's conn_flags carry
// IP_VS_CONN_F_INACTIVE), in state NONE for TCP and UDP for UDP, and
// expiring after that state's timeout. The caller then advances it with
// its first packet.
func (c *Conn) Init(now int64, to *Timeouts) {
	c.Flags |= FlagInactive
	if c.Orig.Proto == protoUDP {
		c.State = StateUDP
	} else {
		c.State = StateNone
	}
	c.Expires = now + to.Timeout(c.State)
}

// Advance accounts for one packet of the connection seen in direction
// dir with the given TCP flags (ignored for UDP): it moves the state with
// TCPNext, re-arms the timer with the new state's timeout, and applies
// IPVS's counting rule, under which a TCP connection is active exactly
// while ESTABLISHED and a UDP one is never active. It reports whether
// the connection was and is active, so the caller can move one count of
// its destination from inactive to active or back when they differ.
func (c *Conn) Advance(dir PacketDir, tcpFlags uint8, now int64, to *Timeouts) (wasActive, isActive bool) {
	wasActive = c.Flags&FlagInactive == 0
	if c.State >= numTCPStates {
		c.Expires = now + to.UDP
		return wasActive, wasActive
	}
	if c.Flags&FlagNoOutput != 0 {
		if dir == Output {
			c.Flags &^= FlagNoOutput
		} else {
			dir = InputOnly
		}
	}
	c.State = TCPNext(c.State, dir, tcpFlags)
	c.Expires = now + to.TCP[c.State]
	isActive = c.State == StateEstablished
	if isActive {
		c.Flags &^= FlagInactive
	} else {
		c.Flags |= FlagInactive
	}
	return wasActive, isActive
}
