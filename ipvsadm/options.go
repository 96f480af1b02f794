package ipvsadm

import "strings"

// optID names an entry of the option table.
type optID uint8

const (
	optAddService optID = iota + 1
	optEditService
	optDelService
	optClear
	optList
	optZero
	optAddDest
	optEditDest
	optDelDest
	optSet
	optHelp
	optVersion
	optRestore
	optSave
	optStartDaemon
	optStopDaemon
	optTCP
	optUDP
	optSCTP
	optFWMark
	optScheduler
	optPersistent
	optNetmask
	optRealServer
	optMasq
	optIPIP
	optGateway
	optFullNat
	optWeight
	optUThreshold
	optLThreshold
	optNumeric
	optConnection
	optMcastInterface
	optSyncID
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSort
	optExact
	optIPv6
	optOps
	optPE
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxlen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	optAddLAddr
	optDelLAddr
	optGetLAddr
	optLAddr
)

type argMode uint8

const (
	argNone argMode = iota
	argRequired
	argOptional // popt's POPT_ARGFLAG_OPTIONAL: -p [timeout]
)

type optDef struct {
	long  string
	short byte // 0: long only
	arg   argMode
	id    optID
}

// options is ipvsadm's popt table plus uvs's --fullnat/-k and
// LVS-FULLNAT's local address commands (-P -Q -G, with -z). The options
// uvs does not implement are listed so that they are refused by name
// rather than as unknown.
var options = [...]optDef{
	{"add-service", 'A', argNone, optAddService},
	{"edit-service", 'E', argNone, optEditService},
	{"delete-service", 'D', argNone, optDelService},
	{"clear", 'C', argNone, optClear},
	{"list", 'L', argNone, optList},
	{"list", 'l', argNone, optList},
	{"zero", 'Z', argNone, optZero},
	{"add-server", 'a', argNone, optAddDest},
	{"edit-server", 'e', argNone, optEditDest},
	{"delete-server", 'd', argNone, optDelDest},
	{"set", 0, argNone, optSet},
	{"help", 'h', argNone, optHelp},
	{"version", 'v', argNone, optVersion},
	{"restore", 'R', argNone, optRestore},
	{"save", 'S', argNone, optSave},
	{"start-daemon", 0, argRequired, optStartDaemon},
	{"stop-daemon", 0, argRequired, optStopDaemon},
	{"tcp-service", 't', argRequired, optTCP},
	{"udp-service", 'u', argRequired, optUDP},
	{"sctp-service", 0, argRequired, optSCTP},
	{"fwmark-service", 'f', argRequired, optFWMark},
	{"scheduler", 's', argRequired, optScheduler},
	{"persistent", 'p', argOptional, optPersistent},
	{"netmask", 'M', argRequired, optNetmask},
	{"real-server", 'r', argRequired, optRealServer},
	{"masquerading", 'm', argNone, optMasq},
	{"ipip", 'i', argNone, optIPIP},
	{"gatewaying", 'g', argNone, optGateway},
	{"fullnat", 'k', argNone, optFullNat},
	{"weight", 'w', argRequired, optWeight},
	{"u-threshold", 'x', argRequired, optUThreshold},
	{"l-threshold", 'y', argRequired, optLThreshold},
	{"numeric", 'n', argNone, optNumeric},
	{"connection", 'c', argNone, optConnection},
	{"mcast-interface", 0, argRequired, optMcastInterface},
	{"syncid", 0, argRequired, optSyncID},
	{"timeout", 0, argNone, optTimeout},
	{"daemon", 0, argNone, optDaemon},
	{"stats", 0, argNone, optStats},
	{"rate", 0, argNone, optRate},
	{"thresholds", 0, argNone, optThresholds},
	{"persistent-conn", 0, argNone, optPersistentConn},
	{"nosort", 0, argNone, optNoSort},
	{"sort", 0, argNone, optSort},
	{"exact", 'X', argNone, optExact},
	{"ipv6", '6', argNone, optIPv6},
	{"ops", 'o', argNone, optOps},
	{"pe", 0, argRequired, optPE},
	{"sched-flags", 'b', argRequired, optSchedFlags},
	{"mcast-group", 0, argRequired, optMcastGroup},
	{"mcast-port", 0, argRequired, optMcastPort},
	{"mcast-ttl", 0, argRequired, optMcastTTL},
	{"sync-maxlen", 0, argRequired, optSyncMaxlen},
	{"tun-info", 0, argNone, optTunInfo},
	{"tun-type", 0, argRequired, optTunType},
	{"tun-port", 0, argRequired, optTunPort},
	{"tun-nocsum", 0, argNone, optTunNoCsum},
	{"tun-csum", 0, argNone, optTunCsum},
	{"tun-remcsum", 0, argNone, optTunRemCsum},
	// The Alibaba LVS-FULLNAT ipvsadm's local address commands.
	{"add-laddr", 'P', argNone, optAddLAddr},
	{"del-laddr", 'Q', argNone, optDelLAddr},
	{"get-laddr", 'G', argNone, optGetLAddr},
	{"laddr", 'z', argRequired, optLAddr},
}

func findLong(name string) *optDef {
	for i := range options {
		if options[i].long == name {
			return &options[i]
		}
	}
	return nil
}

func findShort(c byte) *optDef {
	for i := range options {
		if options[i].short == c && c != 0 {
			return &options[i]
		}
	}
	return nil
}

// popt's error codes that ipvsadm reports, with poptStrerror's text.
type poptErr uint8

const (
	poptOK poptErr = iota
	poptEnd
	poptBadOpt
	poptNoArg
	poptUnwantedArg
)

func (e poptErr) String() string {
	switch e {
	case poptBadOpt:
		return "unknown option"
	case poptNoArg:
		return "missing argument"
	case poptUnwantedArg:
		return "option does not take an argument"
	}
	return ""
}

// scanner walks a command line as popt does: options in any order,
// words that are not options set aside as arguments, "--" ending the
// options.
type scanner struct {
	args     []string
	next     int    // index of the next element of args
	cluster  string // rest of a group of short options (-Ln)
	rest     []string
	dashdash bool
}

// bad is poptBadOption: the last element of args consumed.
func (s *scanner) bad() string {
	if s.next == 0 {
		return ""
	}
	return s.args[s.next-1]
}

// nextOpt returns the next option and its argument.
func (s *scanner) nextOpt() (def *optDef, arg string, hasArg bool, err poptErr) {
	if s.cluster == "" {
		for {
			if s.next == len(s.args) {
				return nil, "", false, poptEnd
			}
			a := s.args[s.next]
			s.next++
			if s.dashdash || len(a) < 2 || a[0] != '-' {
				s.rest = append(s.rest, a)
				continue
			}
			if a == "--" {
				s.dashdash = true
				continue
			}
			if strings.HasPrefix(a, "--") {
				name, val, eq := strings.Cut(a[2:], "=")
				def = findLong(name)
				if def == nil {
					return nil, "", false, poptBadOpt
				}
				if eq {
					if def.arg == argNone {
						return nil, "", false, poptUnwantedArg
					}
					return def, val, true, poptOK
				}
				return s.takeArg(def)
			}
			s.cluster = a[1:]
			break
		}
	}
	c := s.cluster[0]
	s.cluster = s.cluster[1:]
	def = findShort(c)
	if def == nil {
		s.cluster = ""
		return nil, "", false, poptBadOpt
	}
	if def.arg == argNone {
		return def, "", false, poptOK
	}
	if s.cluster != "" {
		// popt skips one '=' between a short option and its value.
		arg = strings.TrimPrefix(s.cluster, "=")
		s.cluster = ""
		return def, arg, true, poptOK
	}
	return s.takeArg(def)
}

// takeArg takes an option's argument from the next element.
func (s *scanner) takeArg(def *optDef) (*optDef, string, bool, poptErr) {
	if def.arg == argNone {
		return def, "", false, poptOK
	}
	if s.next == len(s.args) {
		if def.arg == argOptional {
			return def, "", false, poptOK
		}
		return nil, "", false, poptNoArg
	}
	a := s.args[s.next]
	if def.arg == argOptional && strings.HasPrefix(a, "-") {
		return def, "", false, poptOK
	}
	s.next++
	return def, a, true, poptOK
}

// leftover is poptGetArg: the next word that was not an option.
func (s *scanner) leftover() (string, bool) {
	if len(s.rest) == 0 {
		return "", false
	}
	a := s.rest[0]
	s.rest = s.rest[1:]
	return a, true
}
