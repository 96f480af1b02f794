package control

import "net/netip"

// Stats are IPVS's per-service and per-destination counters, with the rate
// estimates ipvsadm --rate shows (per second).
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inpkts"`
	OutPkts  uint64 `json:"outpkts"`
	InBytes  uint64 `json:"inbytes"`
	OutBytes uint64 `json:"outbytes"`
	CPS      uint64 `json:"cps"`
	InPPS    uint64 `json:"inpps"`
	OutPPS   uint64 `json:"outpps"`
	InBPS    uint64 `json:"inbps"`
	OutBPS   uint64 `json:"outbps"`
}

// Service is one virtual service: either Proto+Addr+Port or FWMark.
type Service struct {
	Proto      string     `json:"proto"` // "TCP", "UDP" (empty with FWMark)
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port"`
	FWMark     uint32     `json:"fwmark,omitempty"`
	Sched      string     `json:"sched"`
	SchedFlags []string   `json:"sched_flags,omitempty"` // "sh-fallback", "sh-port", "mh-fallback", "mh-port", "ops"
	Persistent bool       `json:"persistent,omitempty"`
	Timeout    uint32     `json:"timeout,omitempty"` // persistence seconds
	Netmask    int        `json:"netmask,omitempty"` // persistence granularity, prefix bits (32 = per client)
	Stats      Stats      `json:"stats"`
	Dests      []Dest     `json:"dests,omitempty"`
	// LocalAddrs are the service's FULLNAT local addresses (LIPs), in
	// the order they were added: the sources FULLNAT connections take
	// towards the real servers (LVS-FULLNAT's laddrs).
	LocalAddrs []LocalAddr `json:"laddrs,omitempty"`
}

// LocalAddr is one FULLNAT local address of a service.
type LocalAddr struct {
	Addr netip.Addr `json:"addr"`
	// Conns counts the connections that use the address now; only
	// OpGetLAddr fills it in.
	Conns uint64 `json:"conns,omitempty"`
}

// Fwd names as ipvsadm prints them.
const (
	FwdMasq    = "Masq"
	FwdRoute   = "Route"
	FwdTunnel  = "Tunnel"
	FwdLocal   = "Local"
	FwdFullNat = "FullNat"
)

// Dest is one real server of a service.
type Dest struct {
	Addr         netip.Addr `json:"addr"`
	Port         uint16     `json:"port"`
	Fwd          string     `json:"fwd"`
	Weight       int32      `json:"weight"`
	UThreshold   uint32     `json:"u_threshold,omitempty"`
	LThreshold   uint32     `json:"l_threshold,omitempty"`
	ActiveConns  uint32     `json:"active_conns"`
	InactConns   uint32     `json:"inact_conns"`
	PersistConns uint32     `json:"persist_conns"`
	Stats        Stats      `json:"stats"`
}

// Conn is one entry of the connection table (ipvsadm -L -c).
type Conn struct {
	Proto   string         `json:"proto"`  // "TCP", "UDP", or "IP" for templates
	Expire  uint32         `json:"expire"` // seconds left
	State   string         `json:"state"`  // IPVS state name: ESTABLISHED, SYN_RECV, ..., UDP, NONE
	Source  netip.AddrPort `json:"source"`
	Virtual netip.AddrPort `json:"virtual"`
	Dest    netip.AddrPort `json:"dest"`
	FWMark  uint32         `json:"fwmark,omitempty"`
}

// Timeouts are ipvsadm --set's three values, in seconds.
type Timeouts struct {
	TCP    uint32 `json:"tcp"`
	TCPFin uint32 `json:"tcpfin"`
	UDP    uint32 `json:"udp"`
}

// Info is what ipvsadm prints in its first line.
type Info struct {
	Version  string `json:"version"`   // "1.2.1", as IPVS reports
	ConnSize uint32 `json:"conn_size"` // connection hash table size
}

// Ops a Request may carry.
const (
	OpInfo       = "info"
	OpList       = "list"        // Services (with dests and stats); Service selects one when set
	OpConns      = "conns"       // Conns
	OpAddService = "add-service" // -A
	OpEditSvc    = "edit-service"
	OpDelService = "del-service"
	OpClear      = "clear" // -C
	OpAddDest    = "add-dest"
	OpEditDest   = "edit-dest"
	OpDelDest    = "del-dest"
	OpZero       = "zero" // -Z, Service selects one when set
	OpSetTimeout = "set-timeout"
	OpGetTimeout = "get-timeout"
	OpReload     = "reload" // re-read the configuration file (uvsd reload, like SIGHUP)
	// LVS-FULLNAT's local address commands: Service and LocalAddr name
	// the service and the address (-P/--add-laddr, -Q/--del-laddr);
	// OpGetLAddr answers Services with their LocalAddrs and connection
	// counts, Service selecting one when set (-G/--get-laddr).
	OpAddLAddr = "add-laddr"
	OpDelLAddr = "del-laddr"
	OpGetLAddr = "get-laddr"
)

// Request is one uvsadm request: a JSON object on its own line.
type Request struct {
	Op       string    `json:"op"`
	Service  *Service  `json:"service,omitempty"`
	Dest     *Dest     `json:"dest,omitempty"`
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// LocalAddr is the FULLNAT local address of OpAddLAddr and
	// OpDelLAddr.
	LocalAddr netip.Addr `json:"laddr,omitzero"`
}

// Response answers one Request: a JSON object on its own line. Err is
// empty on success and holds uvsd's message otherwise.
type Response struct {
	Err      string    `json:"err,omitempty"`
	Info     *Info     `json:"info,omitempty"`
	Services []Service `json:"services,omitempty"`
	Conns    []Conn    `json:"conns,omitempty"`
	Timeouts *Timeouts `json:"timeouts,omitempty"`
}
