package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Diag is a warning with its position: a keyword uvs knows but does not
// support, an unknown keyword, or a value corrected as keepalived corrects
// it.
type Diag struct {
	Pos Pos
	Msg string
}

func (d Diag) String() string { return d.Pos.String() + ": " + d.Msg }

// Error is a configuration uvs refuses. Its message is "file:line: what
// is wrong"; Err, when set, is the underlying cause (an I/O error of an
// include, for instance) and is returned by Unwrap.
type Error struct {
	Pos Pos
	Msg string
	Err error
}

func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return e.Pos.String() + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Config is a parsed keepalived.conf.
type Config struct {
	Global              Global
	VirtualServers      []VirtualServer
	VirtualServerGroups map[string]VirtualServerGroup
	VRRPScripts         []VRRPScript
	VRRPInstances       []VRRPInstance
	VRRPSyncGroups      []VRRPSyncGroup
	StaticIPAddresses   []IPAddress
	// LocalAddressGroups are FULLNAT's local address pools
	// (local_address_group NAME { addr ... }, the LVS-FULLNAT syntax).
	LocalAddressGroups map[string][]netip.Addr
	Warnings           []Diag
}

// Global is global_defs, with keepalived's defaults filled in.
type Global struct {
	Pos              Pos
	RouterID         string
	DefaultInterface string
	LVSTimeouts      LVSTimeouts
	LVSSyncDaemon    *LVSSyncDaemon
	LVSFlush         bool
	LVSFlushOnStop   bool

	ScriptUser           string
	EnableScriptSecurity bool

	VRRPVersion                 int           // 2 (default) or 3
	VRRPMcastGroup4             netip.Addr    // 224.0.0.18
	VRRPMcastGroup6             netip.Addr    // ff02::12
	VRRPGarpMasterDelay         time.Duration // 5s
	VRRPGarpMasterRepeat        int           // 5
	VRRPGarpMasterRefresh       time.Duration // 0: no refresh
	VRRPGarpMasterRefreshRepeat int           // 1
	VRRPGarpLowerPrioDelay      time.Duration // vrrp_garp_master_delay
	VRRPGarpLowerPrioRepeat     int           // vrrp_garp_master_repeat
	VRRPGarpInterval            time.Duration
	VRRPGnaInterval             time.Duration
	VRRPMinGarp                 bool
	VRRPStrict                  bool
	VRRPSkipCheckAdvAddr        bool
	VRRPCheckUnicastSrc         bool
}

// LVSTimeouts is global_defs' lvs_timeouts (ipvsadm --set), seconds; 0
// leaves a timeout as it is.
type LVSTimeouts struct{ TCP, TCPFin, UDP uint32 }

// LVSSyncDaemon is global_defs' lvs_sync_daemon.
type LVSSyncDaemon struct {
	Pos       Pos
	Interface string
	Instance  string     // VRRP instance whose state it follows; "" runs master and backup
	SyncID    uint8      // default: the instance's virtual_router_id, else 0
	MaxLen    uint16     // 0: kernel default
	Port      uint16     // 8848
	TTL       uint8      // 0: kernel default
	Group     netip.Addr // 224.0.0.81
}

// VirtualServer is one virtual_server block. Exactly one of Addr, FWMark
// and Group identifies it.
type VirtualServer struct {
	Pos    Pos
	Addr   netip.Addr
	Port   uint16 // 0 only for a persistent service (keepalived makes it one)
	FWMark uint32
	Group  string // virtual_server group NAME

	IPFamily string // "inet" or "inet6" from ip_family, "" when unset
	Protocol string // TCP (default), UDP or SCTP
	LBAlgo   string // lb_algo or lvs_sched, default wlc as keepalived
	LBKind   string // lb_kind or lvs_method: NAT (default), DR, TUN or FNAT (FULLNAT accepted)
	Tunnel   Tunnel // TUN's type, when lb_kind is TUN
	// LAddrGroup names the local_address_group FULLNAT connections take
	// their source addresses from (laddr_group_name).
	LAddrGroup string

	SchedFlags []string // flag-1, flag-2, flag-3, sh-port, sh-fallback, mh-port, mh-fallback, ops

	PersistenceTimeout uint32 // seconds; 360 when persistence is asked without a value
	// PersistenceGranularity is the persistence netmask as prefix bits, 0
	// when unset (the whole client address).
	PersistenceGranularity int
	PersistenceEngine      string

	DelayLoop        time.Duration // 60s
	ConnectTimeout   time.Duration // 5s
	Retry            int           // -1: each checker's default
	DelayBeforeRetry time.Duration // -1: each checker's default
	Warmup           time.Duration // -1: the checker's delay_loop

	Quorum           uint32 // 1
	Hysteresis       uint32
	QuorumUp         string
	QuorumDown       string
	Alpha            bool
	Omega            bool
	InhibitOnFailure bool // default for the real servers
	HASuspend        bool
	Virtualhost      string
	Weight           int32 // default weight of the real servers, 1

	SorryServer *SorryServer
	RealServers []RealServer
}

// PersistenceGranularityBits is the persistence netmask as prefix bits:
// the configured granularity, or the whole address (32 or 128).
func (v *VirtualServer) PersistenceGranularityBits() int {
	if v.PersistenceGranularity != 0 {
		return v.PersistenceGranularity
	}
	if v.Addr.Is6() || v.IPFamily == "inet6" {
		return 128
	}
	return 32
}

// Tunnel is lvs_method TUN's options.
type Tunnel struct {
	Type string // ipip (default), gue or gre
	Port uint16 // gue's port
	Csum string // nocsum (default), csum or remcsum
}

// SorryServer is the server that replaces all real servers while the
// quorum is lost.
type SorryServer struct {
	Pos     Pos
	Addr    netip.Addr
	Port    uint16
	Inhibit bool
	LBKind  string
	Tunnel  Tunnel
}

// RealServer is one real_server block. Values left out are inherited from
// the virtual server, as keepalived does.
type RealServer struct {
	Pos    Pos
	Addr   netip.Addr
	Port   uint16 // the virtual port when left out; 0 for fwmark services
	Weight int32  // 0..65535, default the virtual server's weight (1)
	LBKind string // effective forwarding method
	Tunnel Tunnel

	UThreshold       uint32
	LThreshold       uint32
	InhibitOnFailure bool
	Alpha            bool
	NotifyUp         string
	NotifyDown       string
	Virtualhost      string

	DelayLoop        time.Duration
	ConnectTimeout   time.Duration
	Retry            int           // -1: each checker's default
	DelayBeforeRetry time.Duration // -1: each checker's default
	Warmup           time.Duration // -1: the checker's delay_loop

	Checkers []Checker
}

// Checker is one health checker of a real server. Every timing is
// resolved: the checker's own value, else the real server's, else the
// virtual server's, else keepalived's default for the kind.
type Checker struct {
	Pos  Pos
	Kind string // TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK

	ConnectIP   netip.Addr // default: the real server's address
	ConnectPort uint16     // default: the real server's port
	BindTo      netip.Addr
	BindPort    uint16
	BindIf      string
	FWMark      uint32

	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	DelayLoop        time.Duration
	Warmup           time.Duration
	Alpha            bool

	// HTTP_GET and SSL_GET.
	URLs         []URL
	HTTPProtocol string // 1.0, 1.0C or 1.1; "" for keepalived's default
	FastRecovery bool
	Virtualhost  string
	EnableSNI    bool
	SNIName      string

	// MISC_CHECK.
	MiscPath    string
	MiscTimeout time.Duration // 0: the delay_loop
	MiscDynamic bool
	User        string
}

// URL is one url block of an HTTP_GET or SSL_GET checker.
type URL struct {
	Pos          Pos
	Path         string
	Digest       string // lower-case hex MD5 of the body, "" when unset
	StatusCodes  []CodeRange
	Virtualhost  string // default: the checker's, real server's, virtual server's
	Regex        string
	RegexNoMatch bool
}

// CodeRange is an inclusive range of HTTP status codes.
type CodeRange struct{ Lo, Hi uint16 }

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     Pos
	Name    string
	Entries []VSGEntry
}

// VSGEntry is one line of a virtual_server_group: an address range with an
// optional port, or a firewall mark.
type VSGEntry struct {
	Pos    Pos
	First  netip.Addr
	Last   netip.Addr // == First for a single address
	Port   uint16
	FWMark uint32
	Family string // fwmark's optional inet or inet6
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Pos      Pos
	Name     string
	Script   string
	Interval time.Duration // 1s
	Timeout  time.Duration // default: the interval
	Weight   int           // -253..253
	Reverse  bool
	Rise     int // 1
	Fall     int // 1
	User     string
	InitFail bool
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Pos              Pos
	Name             string
	State            string // MASTER or BACKUP (default)
	Interface        string
	VirtualRouterID  uint8
	Priority         uint8         // 1..255, default 100
	AdvertInt        time.Duration // 1s
	Version          int           // 2 or 3: version, else global vrrp_version; IPv6 forces 3
	NoPreempt        bool
	PreemptDelay     time.Duration
	Accept           bool // accept mode; default on unless vrrp_strict
	AuthType         string
	AuthPass         string
	McastSrcIP       netip.Addr
	UnicastSrcIP     netip.Addr
	UnicastPeers     []netip.Addr
	DontTrackPrimary bool
	StrictMode       bool

	// VirtualIPAddresses are the prefixes of VirtualIPs, in order.
	VirtualIPAddresses []netip.Prefix
	VirtualIPs         []IPAddress
	ExcludedIPs        []IPAddress

	TrackInterfaces []Track
	TrackScripts    []Track

	NotifyMaster string
	NotifyBackup string
	NotifyFault  string
	NotifyStop   string
	Notify       string

	GarpMasterDelay         time.Duration
	GarpMasterRepeat        int
	GarpMasterRefresh       time.Duration
	GarpMasterRefreshRepeat int
	GarpLowerPrioDelay      time.Duration
	GarpLowerPrioRepeat     int

	UseVMAC      bool
	VMACName     string
	VMACAddr     string
	VMACXmitBase bool
}

// Track is one entry of a track_interface or track_script block.
type Track struct {
	Pos     Pos
	Name    string
	Weight  int // -253..253; 0 means fault on failure
	Reverse bool
}

// VRRPSyncGroup is a vrrp_sync_group block.
type VRRPSyncGroup struct {
	Pos             Pos
	Name            string
	Group           []string
	TrackInterfaces []Track
	TrackScripts    []Track
	NotifyMaster    string
	NotifyBackup    string
	NotifyFault     string
	NotifyStop      string
	Notify          string
}

// IPAddress is one line of virtual_ipaddress, virtual_ipaddress_excluded
// or static_ipaddress: an address with ip-address(8) options.
type IPAddress struct {
	Pos       Pos
	Prefix    netip.Prefix // /32 or /128 when no mask is given
	Broadcast netip.Addr
	Peer      netip.Addr
	Dev       string
	Label     string
	Scope     string
	Flags     []string // home, -nodad, no_track, use_vmac, ...
}

// Expanded is one concrete virtual service: a virtual server, or one
// member of its group.
type Expanded struct {
	VS       *VirtualServer
	Protocol string // "" for a firewall mark service
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// String is the service as ipvsadm names it: TCP 10.0.0.1:80, FWM 1.
func (e Expanded) String() string {
	if e.FWMark != 0 {
		return fmt.Sprintf("FWM %d", e.FWMark)
	}
	return e.Protocol + " " + netip.AddrPortFrom(e.Addr, e.Port).String()
}

// ExpandedServices lists the concrete services of the configuration, in
// order: a virtual_server by address or fwmark is one service; a
// virtual_server group yields one service per address of each range and
// one per fwmark of the group.
func (c *Config) ExpandedServices() []Expanded {
	out := make([]Expanded, 0, len(c.VirtualServers))
	for i := range c.VirtualServers {
		out = c.expand(out, &c.VirtualServers[i])
	}
	return out
}

func (c *Config) expand(out []Expanded, vs *VirtualServer) []Expanded {
	switch {
	case vs.FWMark != 0:
		return append(out, Expanded{VS: vs, FWMark: vs.FWMark})
	case vs.Group == "":
		return append(out, Expanded{VS: vs, Protocol: vs.Protocol, Addr: vs.Addr, Port: vs.Port})
	}
	g := c.VirtualServerGroups[vs.Group]
	for _, e := range g.Entries {
		if e.FWMark != 0 {
			out = append(out, Expanded{VS: vs, FWMark: e.FWMark})
			continue
		}
		for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
			out = append(out, Expanded{VS: vs, Protocol: vs.Protocol, Addr: a, Port: e.Port})
		}
	}
	return out
}

// ParseFile reads the keepalived.conf at path; relative includes are
// resolved against the directory of the file that includes them.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return parse(path, filepath.Dir(path), f, osFiles{})
}

// Parse reads a keepalived.conf from r. name is the file name used in
// positions; relative includes of r are resolved against the working
// directory, those of included files against their own directory.
func Parse(name string, r io.Reader) (*Config, error) {
	return parse(name, "", r, osFiles{})
}

func parse(name, dir string, r io.Reader, files fileSystem) (*Config, error) {
	lx := &lexer{files: files}
	if err := lx.file(name, dir, r); err != nil {
		return nil, err
	}
	p := &parser{toks: lx.toks, cfg: &Config{VirtualServerGroups: map[string]VirtualServerGroup{}}}
	p.cfg.Warnings = lx.warnings
	p.cfg.Global = defaultGlobal()
	p.top()
	if p.err == nil {
		p.validate()
	}
	if p.err != nil {
		return nil, p.err
	}
	return p.cfg, nil
}

func defaultGlobal() Global {
	return Global{
		VRRPVersion:                 2,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::12"),
		VRRPGarpMasterDelay:         5 * time.Second,
		VRRPGarpMasterRepeat:        5,
		VRRPGarpMasterRefreshRepeat: 1,
		VRRPGarpLowerPrioDelay:      -1,
		VRRPGarpLowerPrioRepeat:     -1,
	}
}
