package ipvsadm

import (
	"net/netip"
	"strings"

	"github.com/uvs-project/uvs/control"
)

// Columns of ipvsadm's commands_v_options table (its OPTC_* values).
const (
	colNumeric = iota
	colConnection
	colService
	colScheduler
	colPersistent
	colNetmask
	colServer
	colForward
	colWeight
	colUThreshold
	colLThreshold
	colMcast
	colTimeout
	colDaemon
	colStats
	colRate
	colThresholds
	colPersistentConn
	colNoSort
	colSyncID
	colExact
	colOnePacket
	colPE
	colSchedFlags
	colMcastGroup
	colMcastPort
	colMcastTTL
	colSyncMaxlen
	colTunInfo
	colTunType
	colTunPort
	colTunNoCsum
	colTunCsum
	colTunRemCsum
	colLAddr // LVS-FULLNAT's -z/--laddr
	numCols
)

// colNames are ipvsadm's optnames, as its messages spell them.
var colNames = [numCols]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops",
	"pe", "sched-flags", "mcast-group", "mcast-port", "mcast-ttl",
	"sync-maxlen", "tun-info", "tun-type", "tun-port", "tun-nocsum",
	"tun-csum", "tun-remcsum", "local-address",
}

// legal is ipvsadm's commands_v_options, one string per command, one
// character per column of colNames: '+' compulsory, 'x' illegal, '1'
// at most one of the '1's, ' ' optional. The last column and the
// -P/-Q/-G rows are the LVS-FULLNAT ipvsadm's, except that -G takes -n
// (a no-op: the listing is numeric anyway) where that fork refuses it.
var legal = [...]string{
	CmdAddService:  "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
	CmdEditService: "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
	CmdDelService:  "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdClear:       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdList:        " 11xxxxxxxxx11       xxxxxxx xxxxxx",
	CmdAddDest:     "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
	CmdDelDest:     "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdEditDest:    "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
	CmdSetTimeout:  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdRestore:     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdSave:        " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdZero:        "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdAddLAddr:    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+",
	CmdDelLAddr:    "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+",
	CmdGetLAddr:    " x xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

const (
	maxTimeout         = 86400 * 31 // ipvsadm's MAX_TIMEOUT
	persistentTimeout  = 300        // IPVS_SVC_PERSISTENT_TIMEOUT
	schedNameMax       = 16 - 1     // IP_VS_SCHEDNAME_MAXLEN - 1
	schedFlagsArgMax   = 128 - 1    // sizeof(sched_flags_arg) - 1
	defaultSched       = "wlc"      // DEF_SCHED
	intMax             = 1<<31 - 1
	uintMax            = 1<<32 - 1
	defaultNetmaskV4   = 32
	defaultNetmaskV6   = 128
	fwdDefault         = control.FwdRoute
	fwmarkProtoForName = "tcp" // ipvsadm sets TCP on fwmark services
)

// Scheduler flag bits as the kernel has them (IP_VS_SVC_F_SCHED1..3,
// IP_VS_SVC_F_ONEPACKET), for checks and printing.
const (
	flagSched1 uint32 = 1 << iota
	flagSched2
	flagSched3
	flagOps
)

// parser holds ipvsadm's struct ipvs_command_entry while one command
// line is read.
type parser struct {
	sc   scanner
	cmd  Kind
	opts uint64

	proto      string // "TCP", "UDP"; "" before -t/-u and for -f
	nameProto  string // protocol for port names: "tcp", "udp", ""
	svcAddr    netip.Addr
	svcPort    uint16
	fwmark     uint32
	sched      string
	persistent bool
	timeout    uint32
	netmask    int
	flags      uint32
	flagsArg   string

	destAddr netip.Addr
	destPort uint16
	fwd      string
	weight   int32
	uthresh  uint32
	lthresh  uint32

	laddr netip.Addr // -z

	timeouts control.Timeouts
	list     ListOptions
}

// Parse reads one ipvsadm command line, without the program name.
// An empty line is ipvsadm without arguments: list everything. Errors
// are *Error with ipvsadm's message.
func Parse(args []string) (*Command, error) {
	if len(args) == 0 {
		return &Command{Kind: CmdList}, nil
	}
	p := &parser{
		sc:      scanner{args: args},
		netmask: defaultNetmaskV4,
		fwd:     fwdDefault,
		weight:  1,
	}
	if err := p.parseOptions(); err != nil {
		return nil, err
	}
	if p.cmd == CmdHelp || p.cmd == CmdVersion {
		return &Command{Kind: p.cmd}, nil
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.command(), nil
}

func (p *parser) set(col int) error {
	bit := uint64(1) << col
	if p.opts&bit != 0 {
		return fail("multiple '%s' options specified", colNames[col])
	}
	p.opts |= bit
	return nil
}

func (p *parser) has(col int) bool { return p.opts&(1<<col) != 0 }

func unsupported(def *optDef) *Error {
	return fail("uvs: option --%s is not supported", def.long)
}

func (p *parser) parseOptions() error {
	def, _, _, perr := p.sc.nextOpt()
	if perr != poptOK {
		return tryHelp()
	}
	switch def.id {
	case optAddService:
		p.cmd = CmdAddService
	case optEditService:
		p.cmd = CmdEditService
	case optDelService:
		p.cmd = CmdDelService
	case optAddDest:
		p.cmd = CmdAddDest
	case optEditDest:
		p.cmd = CmdEditDest
	case optDelDest:
		p.cmd = CmdDelDest
	case optClear:
		p.cmd = CmdClear
	case optList:
		p.cmd = CmdList
	case optZero:
		p.cmd = CmdZero
	case optSet:
		p.cmd = CmdSetTimeout
	case optRestore:
		p.cmd = CmdRestore
	case optSave:
		p.cmd = CmdSave
	case optAddLAddr:
		p.cmd = CmdAddLAddr
	case optDelLAddr:
		p.cmd = CmdDelLAddr
	case optGetLAddr:
		p.cmd = CmdGetLAddr
	case optHelp:
		p.cmd = CmdHelp
		return nil
	case optVersion:
		p.cmd = CmdVersion
		return nil
	case optStartDaemon, optStopDaemon:
		return unsupported(def)
	default:
		return tryHelp()
	}

	for {
		def, arg, hasArg, perr := p.sc.nextOpt()
		if perr == poptEnd {
			break
		}
		if perr != poptOK {
			return &Error{Msg: p.sc.bad() + ": " + perr.String(), Status: 255}
		}
		if err := p.option(def, arg, hasArg); err != nil {
			return err
		}
	}

	if p.cmd == CmdSetTimeout {
		var vals [3]string
		for i := range vals {
			a, ok := p.sc.leftover()
			if !ok {
				return fail("--set option requires 3 timeout values")
			}
			vals[i] = a
		}
		var t [3]uint32
		for i, v := range vals {
			n, err := parseTimeout(v, 0, maxTimeout)
			if err != nil {
				return err
			}
			t[i] = n
		}
		p.timeouts = control.Timeouts{TCP: t[0], TCPFin: t[1], UDP: t[2]}
	}
	if a, ok := p.sc.leftover(); ok {
		return fail("unexpected argument %s", a)
	}
	if p.flagsArg != "" {
		f, err := parseSchedFlags(p.sched, p.flagsArg)
		if err != nil {
			return err
		}
		p.flags = p.flags&^(flagSched1|flagSched2|flagSched3) | f
	}
	return nil
}

// option is the body of parse_options' loop.
func (p *parser) option(def *optDef, arg string, hasArg bool) error {
	switch def.id {
	case optTCP, optUDP:
		if err := p.set(colService); err != nil {
			return err
		}
		p.proto, p.nameProto = "TCP", "tcp"
		if def.id == optUDP {
			p.proto, p.nameProto = "UDP", "udp"
		}
		a, port, hasPort, ok := parseService(arg, p.nameProto)
		if !ok {
			return fail("illegal virtual server address[:port] specified")
		}
		p.svcAddr = a
		if hasPort {
			p.svcPort = port
		}
		if a.Is6() {
			p.netmask = defaultNetmaskV6
		}
	case optFWMark:
		if err := p.set(colService); err != nil {
			return err
		}
		m, ok := parseFWMark(arg)
		if !ok {
			return fail("invalid fwmark value `%s' specified", arg)
		}
		p.proto, p.nameProto = "", fwmarkProtoForName
		p.svcAddr = netip.Addr{}
		p.fwmark = m
	case optScheduler:
		if err := p.set(colScheduler); err != nil {
			return err
		}
		p.sched = arg
		if len(p.sched) > schedNameMax {
			p.sched = p.sched[:schedNameMax]
		}
	case optPersistent:
		if err := p.set(colPersistent); err != nil {
			return err
		}
		p.persistent = true
		p.timeout = persistentTimeout
		if hasArg {
			t, err := parseTimeout(arg, 1, maxTimeout)
			if err != nil {
				return err
			}
			p.timeout = t
		}
	case optNetmask:
		if err := p.set(colNetmask); err != nil {
			return err
		}
		if p.svcAddr.Is6() {
			n := atoi(arg)
			if n < 1 || n > 128 {
				return fail("illegal ipv6 netmask specified")
			}
			p.netmask = n
			break
		}
		bits, ok := parseNetmask(arg)
		if !ok {
			return fail("illegal virtual server persistent mask specified")
		}
		if bits == 0 {
			// control.Service.Netmask 0 means "unset" (per client).
			return fail("uvs: persistent mask 0.0.0.0 is not supported")
		}
		p.netmask = bits
	case optRealServer:
		if err := p.set(colServer); err != nil {
			return err
		}
		a, port, hasPort, ok := parseService(arg, p.nameProto)
		if !ok {
			return fail("illegal real server address[:port] specified")
		}
		p.destAddr = a
		p.destPort = p.svcPort
		if hasPort {
			p.destPort = port
		}
	case optLAddr:
		if err := p.set(colLAddr); err != nil {
			return err
		}
		// The fork reads host[:port] and keeps only the address.
		a, _, _, ok := parseService(arg, "")
		if !ok {
			return fail("illegal local address")
		}
		p.laddr = a
	case optIPIP, optGateway, optMasq, optFullNat:
		if err := p.set(colForward); err != nil {
			return err
		}
		switch def.id {
		case optIPIP:
			p.fwd = control.FwdTunnel
		case optGateway:
			p.fwd = control.FwdRoute
		case optMasq:
			p.fwd = control.FwdMasq
		case optFullNat:
			p.fwd = control.FwdFullNat
		}
	case optWeight:
		if err := p.set(colWeight); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, 65535)
		if !ok {
			return fail("illegal weight specified")
		}
		p.weight = int32(n)
	case optUThreshold:
		if err := p.set(colUThreshold); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, intMax)
		if !ok {
			return fail("illegal u_threshold specified")
		}
		p.uthresh = uint32(n)
	case optLThreshold:
		if err := p.set(colLThreshold); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, intMax)
		if !ok {
			return fail("illegal l_threshold specified")
		}
		p.lthresh = uint32(n)
	case optConnection:
		return p.set(colConnection)
	case optNumeric:
		p.list.Numeric = true
		return p.set(colNumeric)
	case optTimeout:
		return p.set(colTimeout)
	case optStats:
		p.list.Stats = true
		return p.set(colStats)
	case optRate:
		p.list.Rate = true
		return p.set(colRate)
	case optThresholds:
		p.list.Thresholds = true
		return p.set(colThresholds)
	case optPersistentConn:
		p.list.PersistentConn = true
		return p.set(colPersistentConn)
	case optNoSort:
		p.list.NoSort = true
		return p.set(colNoSort)
	case optSort:
		// The default; a no-op kept for old scripts, as in ipvsadm.
	case optExact:
		p.list.Exact = true
		return p.set(colExact)
	case optOps:
		p.flags |= flagOps
		return p.set(colOnePacket)
	case optSchedFlags:
		if err := p.set(colSchedFlags); err != nil {
			return err
		}
		p.flagsArg = arg
		if len(p.flagsArg) > schedFlagsArgMax {
			p.flagsArg = p.flagsArg[:schedFlagsArgMax]
		}
	case optTunInfo:
		p.list.TunInfo = true
		return p.set(colTunInfo)
	case optTunType:
		if err := p.set(colTunType); err != nil {
			return err
		}
		switch arg {
		case "ipip":
		case "gue":
			return fail("uvs: tunnel type gue is not supported")
		default:
			return fail("illegal tunnel type specified")
		}
	case optSCTP, optMcastInterface, optSyncID, optDaemon, optIPv6, optPE,
		optMcastGroup, optMcastPort, optMcastTTL, optSyncMaxlen,
		optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum:
		return unsupported(def)
	default:
		// A second command, or -h/-v after a command.
		return fail("invalid option `%s'", p.sc.bad())
	}
	return nil
}

// check is generic_opt_check and the checks process_options makes
// before acting.
func (p *parser) check() error {
	row := legal[p.cmd]
	last, count := 0, 0
	for j := 0; j < numCols; j++ {
		if !p.has(j) {
			if row[j] == '+' {
				return fail("You need to supply the '%s' option for the '%s' command", colNames[j], p.cmd)
			}
			continue
		}
		switch row[j] {
		case 'x':
			return fail("Illegal '%s' option with the '%s' command", colNames[j], p.cmd)
		case '1':
			count++
			if count == 1 {
				last = j
				continue
			}
			return fail("The option '%s' conflicts with the '%s' option in the '%s' command", colNames[j], colNames[last], p.cmd)
		}
	}

	switch p.cmd {
	case CmdAddService, CmdEditService:
		if p.fwmark == 0 && p.svcPort == 0 && !p.persistent {
			return fail("Zero port specified for non-persistent service")
		}
		if p.flags&flagOps != 0 && p.fwmark == 0 && p.proto != "UDP" {
			return fail("One-Packet Scheduling is only for UDP virtual services")
		}
		if p.sched == "" {
			p.sched = defaultSched
		}
	case CmdAddDest, CmdEditDest:
		if p.fwmark == 0 && (p.fwd == control.FwdTunnel || p.fwd == control.FwdRoute) {
			p.destPort = p.svcPort
		}
		// An fwmark service is IPv4 in ipvsadm unless -6, which uvs
		// does not take.
		if p.destAddr.Is6() != p.svcAddr.Is6() && p.fwd != control.FwdTunnel {
			return fail("Different address family is allowed only for tunneling servers")
		}
		if p.has(colTunType) && p.fwd != control.FwdTunnel {
			return fail("Tunnel options conflict with forward method")
		}
	case CmdList:
		o := p.opts
		bits := func(cols ...int) bool {
			for _, c := range cols {
				if o&(1<<c) != 0 {
					return true
				}
			}
			return false
		}
		if bits(colConnection, colTimeout, colDaemon) && bits(colStats, colRate, colThresholds) ||
			bits(colTimeout, colDaemon) && bits(colPersistentConn) {
			return fail("options conflicts in the list command")
		}
	}
	return nil
}

func (p *parser) command() *Command {
	c := &Command{
		Kind:         p.cmd,
		HasService:   p.has(colService),
		Timeouts:     p.timeouts,
		List:         p.list,
		Conns:        p.has(colConnection),
		ShowTimeouts: p.has(colTimeout),
		LocalAddr:    p.laddr,
	}
	if c.HasService {
		s := control.Service{
			Proto:      p.proto,
			Addr:       p.svcAddr,
			Port:       p.svcPort,
			FWMark:     p.fwmark,
			Sched:      p.sched,
			SchedFlags: flagNames(p.sched, p.flags),
			Persistent: p.persistent,
			Netmask:    p.netmask,
		}
		if p.persistent {
			s.Timeout = p.timeout
		}
		if p.fwmark != 0 {
			s.Port = 0
		}
		c.Service = s
	}
	if p.has(colServer) {
		c.Dest = control.Dest{
			Addr:       p.destAddr,
			Port:       p.destPort,
			Fwd:        p.fwd,
			Weight:     p.weight,
			UThreshold: p.uthresh,
			LThreshold: p.lthresh,
		}
	}
	return c
}

// parseSchedFlags is ipvsadm's parse_sched_flags: a comma list checked
// against the scheduler (wlc when -s is absent).
func parseSchedFlags(sched, arg string) (uint32, error) {
	if sched == "" {
		sched = defaultSched
	}
	var f uint32
	n := 0
	for _, flag := range strings.Split(arg, ",") {
		if flag == "" {
			continue // strtok skips empty fields
		}
		n++
		var want string
		switch flag {
		case "flag-1":
			f |= flagSched1
		case "flag-2":
			f |= flagSched2
		case "flag-3":
			f |= flagSched3
		case "sh-fallback":
			f, want = f|flagSched1, "sh"
		case "sh-port":
			f, want = f|flagSched2, "sh"
		case "mh-fallback":
			f, want = f|flagSched1, "mh"
		case "mh-port":
			f, want = f|flagSched2, "mh"
		default:
			return 0, fail("invalid scheduler flag `%s'", flag)
		}
		if want != "" && sched != want {
			return 0, fail("incompatible scheduler flag `%s'", flag)
		}
	}
	if n == 0 {
		// ipvsadm dereferences strtok's NULL here and crashes.
		return 0, fail("invalid scheduler flag `%s'", arg)
	}
	return f, nil
}

// flagNames turns kernel flag bits into control.Service.SchedFlags, in
// the names uvsd uses (see the package comment).
func flagNames(sched string, f uint32) []string {
	var out []string
	prefix := "sh-"
	if sched == "mh" {
		prefix = "mh-"
	}
	if f&flagSched1 != 0 {
		out = append(out, prefix+"fallback")
	}
	if f&flagSched2 != 0 {
		out = append(out, prefix+"port")
	}
	if f&flagSched3 != 0 {
		out = append(out, "flag-3")
	}
	if f&flagOps != 0 {
		out = append(out, "ops")
	}
	return out
}

// flagBits is flagNames' inverse; unknown names are ignored.
func flagBits(names []string) uint32 {
	var f uint32
	for _, n := range names {
		switch n {
		case "sh-fallback", "mh-fallback", "flag-1":
			f |= flagSched1
		case "sh-port", "mh-port", "flag-2":
			f |= flagSched2
		case "flag-3":
			f |= flagSched3
		case "ops":
			f |= flagOps
		}
	}
	return f
}

// parseTimeout is ipvsadm's parse_timeout for a present argument.
func parseTimeout(s string, lo, hi int64) (uint32, error) {
	n, ok := stringToNumber(s, lo, hi)
	if !ok {
		return 0, fail("invalid timeout value `%s' specified", s)
	}
	return uint32(n), nil
}
