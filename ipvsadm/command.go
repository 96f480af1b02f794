package ipvsadm

import (
	"fmt"
	"net/netip"

	"github.com/uvs-project/uvs/control"
)

// Kind is the command of an ipvsadm command line.
type Kind uint8

// Commands, in ipvsadm.c's CMD_* order (the option table is indexed by it).
const (
	CmdAddService  Kind = iota + 1 // -A, --add-service
	CmdEditService                 // -E, --edit-service
	CmdDelService                  // -D, --delete-service
	CmdClear                       // -C, --clear
	CmdList                        // -L, -l, --list (also no arguments at all)
	CmdAddDest                     // -a, --add-server
	CmdDelDest                     // -d, --delete-server
	CmdEditDest                    // -e, --edit-server
	CmdSetTimeout                  // --set tcp tcpfin udp
	CmdRestore                     // -R, --restore
	CmdSave                        // -S, --save
	CmdZero                        // -Z, --zero
	CmdAddLAddr                    // -P, --add-laddr (LVS-FULLNAT)
	CmdDelLAddr                    // -Q, --del-laddr (LVS-FULLNAT)
	CmdGetLAddr                    // -G, --get-laddr (LVS-FULLNAT)
	CmdHelp                        // -h, --help: print WriteUsage, exit 0
	CmdVersion                     // -v, --version: print WriteVersion, exit 0
)

// kindNames are ipvsadm's cmdnames, as its messages spell them.
var kindNames = [...]string{
	CmdAddService:  "add-service",
	CmdEditService: "edit-service",
	CmdDelService:  "delete-service",
	CmdClear:       "flush",
	CmdList:        "list",
	CmdAddDest:     "add-server",
	CmdDelDest:     "delete-server",
	CmdEditDest:    "edit-server",
	CmdSetTimeout:  "set",
	CmdRestore:     "restore",
	CmdSave:        "save",
	CmdZero:        "zero",
	CmdAddLAddr:    "add-laddr",
	CmdDelLAddr:    "del-laddr",
	CmdGetLAddr:    "get-laddr",
	CmdHelp:        "help",
	CmdVersion:     "version",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// ListOptions select the variant of a listing (-L, -S, -L -c).
type ListOptions struct {
	Numeric        bool // -n, --numeric: no port names
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	Exact          bool // --exact, -X: no K/M/G/T abbreviation
	// NoSort is --nosort. ipvsadm sorts services and destinations by
	// default; --sort is accepted and does nothing, as in ipvsadm.
	NoSort bool
}

// Command is one parsed ipvsadm command line.
type Command struct {
	Kind Kind

	// Service is the virtual service of -t/-u/-f with what -s -p -M -b
	// -o set; Sched is "wlc" for -A and -E when -s is absent, Netmask is
	// 32 (128 for IPv6) when -M is absent. Dests is nil.
	Service control.Service
	// HasService tells whether a service was named: -L and -Z act on all
	// services without one.
	HasService bool

	// Dest is the real server of -a/-e/-d: Fwd "Route" (ipvsadm's
	// default -g) unless -m, -i or -k; Weight 1 unless -w. With -g and
	// -i the port is the service's, as ipvsadm forces it.
	Dest control.Dest

	// LocalAddr is the FULLNAT local address of -P/-Q (-z/--laddr).
	LocalAddr netip.Addr

	// Timeouts are --set's three values.
	Timeouts control.Timeouts

	// List are the listing options of -L, -S (Numeric only) and -L -c.
	List ListOptions
	// Conns is -L -c: the connection table.
	Conns bool
	// ShowTimeouts is -L --timeout.
	ShowTimeouts bool
}

// Request is the uvsd request that carries out c, or false for the
// commands uvsadm handles itself (-h, -v, -R) and -S, which lists with
// OpList. -L answers with OpList (OpConns with -c, OpGetTimeout with
// --timeout); -P, -Q and -G with OpAddLAddr, OpDelLAddr, OpGetLAddr.
func (c *Command) Request() (control.Request, bool) {
	var r control.Request
	svc := func() *control.Service { s := c.Service; return &s }
	dst := func() *control.Dest { d := c.Dest; return &d }
	switch c.Kind {
	case CmdAddService:
		r = control.Request{Op: control.OpAddService, Service: svc()}
	case CmdEditService:
		r = control.Request{Op: control.OpEditSvc, Service: svc()}
	case CmdDelService:
		r = control.Request{Op: control.OpDelService, Service: svc()}
	case CmdClear:
		r = control.Request{Op: control.OpClear}
	case CmdAddDest:
		r = control.Request{Op: control.OpAddDest, Service: svc(), Dest: dst()}
	case CmdEditDest:
		r = control.Request{Op: control.OpEditDest, Service: svc(), Dest: dst()}
	case CmdDelDest:
		r = control.Request{Op: control.OpDelDest, Service: svc(), Dest: dst()}
	case CmdSetTimeout:
		t := c.Timeouts
		r = control.Request{Op: control.OpSetTimeout, Timeouts: &t}
	case CmdZero:
		r = control.Request{Op: control.OpZero}
		if c.HasService {
			r.Service = svc()
		}
	case CmdList:
		switch {
		case c.Conns:
			r = control.Request{Op: control.OpConns}
		case c.ShowTimeouts:
			r = control.Request{Op: control.OpGetTimeout}
		default:
			r = control.Request{Op: control.OpList}
			if c.HasService {
				r.Service = svc()
			}
		}
	case CmdSave:
		r = control.Request{Op: control.OpList}
	case CmdAddLAddr:
		r = control.Request{Op: control.OpAddLAddr, Service: svc(), LocalAddr: c.LocalAddr}
	case CmdDelLAddr:
		r = control.Request{Op: control.OpDelLAddr, Service: svc(), LocalAddr: c.LocalAddr}
	case CmdGetLAddr:
		r = control.Request{Op: control.OpGetLAddr}
		if c.HasService {
			r.Service = svc()
		}
	default:
		return control.Request{}, false
	}
	return r, true
}

// Error is a command line ipvsadm refuses. Error() is ipvsadm's message
// without its newline.
type Error struct {
	Msg string
	// Status is the exit status ipvsadm ends with: 2 for its own checks,
	// 255 for option syntax errors and the "Try ..." hint.
	Status int
	// TryHelp marks the "Try `ipvsadm -h' ..." hint, which ipvsadm prints
	// when the first option is not a command.
	TryHelp bool
	// Line is the 1-based input line for errors from ParseRestore.
	Line int
}

func (e *Error) Error() string { return e.Msg }

func fail(format string, a ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, a...), Status: 2}
}

// tryHelp is ipvsadm's tryhelp_exit.
func tryHelp() *Error {
	return &Error{Msg: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", Status: 255, TryHelp: true}
}
