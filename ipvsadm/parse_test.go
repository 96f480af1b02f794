package ipvsadm

import (
	"errors"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/control"
)

func TestMain(m *testing.M) {
	// Port names from the built-in table, not this machine's
	// /etc/services, so golden files hold everywhere.
	db := readPortDB(strings.NewReader(builtinServices))
	ports = func() *portDB { return db }
	os.Exit(m.Run())
}

var (
	vip  = netip.MustParseAddr("10.0.0.1")
	rip2 = netip.MustParseAddr("10.0.0.2")
)

func tcp(addr string, port uint16) control.Service {
	return control.Service{Proto: "TCP", Addr: netip.MustParseAddr(addr), Port: port, Netmask: 32}
}

// parseCase is a command line and what Parse makes of it.
type parseCase struct {
	line string
	want Command
}

func checkParse(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		got, err := Parse(strings.Fields(tt.line))
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.line, *got, tt.want)
		}
	}
}

// try is ipvsadm's message for a line it cannot make sense of; the
// error that carries it has TryHelp set.
const try = "Try `ipvsadm -h' or 'ipvsadm --help' for more information."

// parseErrorCase is a command line Parse refuses, with ipvsadm's
// message and exit status.
type parseErrorCase struct {
	line, want string
	status     int
}

func checkParseErrors(t *testing.T, tests []parseErrorCase) {
	t.Helper()
	for _, tt := range tests {
		c, err := Parse(strings.Fields(tt.line))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %+v, %v; want error %q", tt.line, c, err, tt.want)
			continue
		}
		if e.Msg != tt.want || e.Status != tt.status {
			t.Errorf("Parse(%q) error = %q (status %d), want %q (status %d)", tt.line, e.Msg, e.Status, tt.want, tt.status)
		}
		if e.TryHelp != (tt.want == try) {
			t.Errorf("Parse(%q) TryHelp = %v", tt.line, e.TryHelp)
		}
	}
}

func TestParse(t *testing.T) {
	withSched := func(s control.Service, sched string) control.Service { s.Sched = sched; return s }
	checkParse(t, []parseCase{
		{"", Command{Kind: CmdList}},
		{"-A -t 10.0.0.1:80 -s rr", Command{Kind: CmdAddService, HasService: true, Service: withSched(tcp("10.0.0.1", 80), "rr")}},
		{"-At 10.0.0.1:80", Command{Kind: CmdAddService, HasService: true, Service: withSched(tcp("10.0.0.1", 80), "wlc")}},
		{"--add-service --tcp-service=10.0.0.1:80 --scheduler=sed", Command{Kind: CmdAddService, HasService: true, Service: withSched(tcp("10.0.0.1", 80), "sed")}},
		{"-E -t10.0.0.1:http -s wrr -p", Command{Kind: CmdEditService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 80, Sched: "wrr", Persistent: true, Timeout: 300, Netmask: 32}}},
		{"-A -t 10.0.0.1:443 -p 600 -M 255.255.255.0 -s lc", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 443, Sched: "lc", Persistent: true, Timeout: 600, Netmask: 24}}},
		{"-A -t 10.0.0.1:443 -p600", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 443, Sched: "wlc", Persistent: true, Timeout: 600, Netmask: 32}}},
		{"-A -t 10.0.0.1:443 --persistent=60", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 443, Sched: "wlc", Persistent: true, Timeout: 60, Netmask: 32}}},
		// -p's optional timeout: the next word starts with '-'.
		{"-A -t 10.0.0.1:0 -p -s rr", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Sched: "rr", Persistent: true, Timeout: 300, Netmask: 32}}},
		// inet_aton's short form.
		{"-A -t 10.1:80", Command{Kind: CmdAddService, HasService: true, Service: withSched(tcp("10.0.0.1", 80), "wlc")}},
		{"-A -t 0x0a000001:80", Command{Kind: CmdAddService, HasService: true, Service: withSched(tcp("10.0.0.1", 80), "wlc")}},
		// The bracketed form around IPv4 loses the port in ipvsadm.
		{"-A -t [10.0.0.1]:80 -p", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Sched: "wlc", Persistent: true, Timeout: 300, Netmask: 32}}},
		{"-A -t [2001:db8::1]:80 -s rr", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Sched: "rr", Netmask: 128}}},
		{"-A -u 10.0.0.1:domain -s rr -o", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "UDP", Addr: vip, Port: 53, Sched: "rr", SchedFlags: []string{"ops"}, Netmask: 32}}},
		{"-A -t 10.0.0.1:80 -s sh -b sh-port,sh-fallback", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 80, Sched: "sh", SchedFlags: []string{"sh-fallback", "sh-port"}, Netmask: 32}}},
		{"-A -t 10.0.0.1:80 -b flag-1 -s mh", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 80, Sched: "mh", SchedFlags: []string{"mh-fallback"}, Netmask: 32}}},
		{"-A -t 10.0.0.1:80 -s rr --sched-flags flag-2,flag-3", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{Proto: "TCP", Addr: vip, Port: 80, Sched: "rr", SchedFlags: []string{"sh-port", "flag-3"}, Netmask: 32}}},
		{"-A -f 1 -s rr", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{FWMark: 1, Sched: "rr", Netmask: 32}}},
		{"-A -f 7 -o", Command{Kind: CmdAddService, HasService: true,
			Service: control.Service{FWMark: 7, Sched: "wlc", SchedFlags: []string{"ops"}, Netmask: 32}}},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 3", Command{Kind: CmdAddDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 8080, Fwd: "Masq", Weight: 3}}},
		// -g and -i force the service's port.
		{"-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g", Command{Kind: CmdAddDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "Route", Weight: 1}}},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2", Command{Kind: CmdAddDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "Route", Weight: 1}}},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -k -x 100 -y 50", Command{Kind: CmdAddDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "FullNat", Weight: 1, UThreshold: 100, LThreshold: 50}}},
		{"--add-server --tcp-service 10.0.0.1:80 --real-server=10.0.0.2:81 --masquerading --weight=0", Command{Kind: CmdAddDest, HasService: true,
			Service: tcp("10.0.0.1", 80), Dest: control.Dest{Addr: rip2, Port: 81, Fwd: "Masq", Weight: 0}}},
		// -r before -t: the port is copied from a service not yet set.
		{"-a -r 10.0.0.2 -t 10.0.0.1:80 -m", Command{Kind: CmdAddDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 0, Fwd: "Masq", Weight: 1}}},
		{"-a -f 5 -r 10.0.0.2:http -m", Command{Kind: CmdAddDest, HasService: true, Service: control.Service{FWMark: 5, Netmask: 32},
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "Masq", Weight: 1}}},
		{"-e -t 10.0.0.1:80 -r 10.0.0.2:80 -i --tun-type ipip -w 5", Command{Kind: CmdEditDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "Tunnel", Weight: 5}}},
		{"-d -t 10.0.0.1:80 -r 10.0.0.2", Command{Kind: CmdDelDest, HasService: true, Service: tcp("10.0.0.1", 80),
			Dest: control.Dest{Addr: rip2, Port: 80, Fwd: "Route", Weight: 1}}},
		{"-D -u 10.0.0.1:53", Command{Kind: CmdDelService, HasService: true, Service: control.Service{Proto: "UDP", Addr: vip, Port: 53, Netmask: 32}}},
		{"-C", Command{Kind: CmdClear}},
		{"-Ln", Command{Kind: CmdList, List: ListOptions{Numeric: true}}},
		{"-l", Command{Kind: CmdList}},
		{"--list --numeric --stats --exact", Command{Kind: CmdList, List: ListOptions{Numeric: true, Stats: true, Exact: true}}},
		{"-L -X --rate", Command{Kind: CmdList, List: ListOptions{Rate: true, Exact: true}}},
		{"-L --thresholds --sort", Command{Kind: CmdList, List: ListOptions{Thresholds: true}}},
		{"-L --persistent-conn --nosort --tun-info", Command{Kind: CmdList, List: ListOptions{PersistentConn: true, NoSort: true, TunInfo: true}}},
		{"-L -c -n", Command{Kind: CmdList, Conns: true, List: ListOptions{Numeric: true}}},
		{"-Lcn --persistent-conn", Command{Kind: CmdList, Conns: true, List: ListOptions{Numeric: true, PersistentConn: true}}},
		{"-L --timeout", Command{Kind: CmdList, ShowTimeouts: true}},
		{"-Ln -t 10.0.0.1:80", Command{Kind: CmdList, HasService: true, Service: tcp("10.0.0.1", 80), List: ListOptions{Numeric: true}}},
		{"-Lt 10.0.0.1:80", Command{Kind: CmdList, HasService: true, Service: tcp("10.0.0.1", 80)}},
		{"--set 900 120 300", Command{Kind: CmdSetTimeout, Timeouts: control.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}}},
		{"--set 0 0 0", Command{Kind: CmdSetTimeout}},
		{"-Z", Command{Kind: CmdZero}},
		{"-Z -f 7", Command{Kind: CmdZero, HasService: true, Service: control.Service{FWMark: 7, Netmask: 32}}},
		{"-S -n", Command{Kind: CmdSave, List: ListOptions{Numeric: true}}},
		{"-S", Command{Kind: CmdSave}},
		{"-R", Command{Kind: CmdRestore}},
		{"-h", Command{Kind: CmdHelp}},
		{"--help -L junk", Command{Kind: CmdHelp}},
		{"-v", Command{Kind: CmdVersion}},
		{"-C --", Command{Kind: CmdClear}},
	})
}

func TestParseErrors(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
		// The first option must be a command.
		{"-t 10.0.0.1:80", try, 255},
		{"--foo", try, 255},
		{"foo", try, 255},
		{"-q", try, 255},
		// popt's errors after the command.
		{"-L --foo", "--foo: unknown option", 255},
		{"-Lq", "-Lq: unknown option", 255},
		{"-A -t", "-t: missing argument", 255},
		{"-L --stats=1", "--stats=1: option does not take an argument", 255},
		// A second command.
		{"-A -L", "invalid option `-L'", 2},
		{"-AL", "invalid option `-AL'", 2},
		{"-L -h", "invalid option `-h'", 2},
		// generic_opt_check.
		{"-A -t 10.0.0.1:80 -g", "Illegal 'forwarding-method' option with the 'add-service' command", 2},
		{"-L -m", "Illegal 'forwarding-method' option with the 'list' command", 2},
		{"-L -r 10.0.0.1", "Illegal 'real-server' option with the 'list' command", 2},
		{"-L -s rr", "Illegal 'scheduler' option with the 'list' command", 2},
		{"-R -n", "Illegal 'numeric' option with the 'restore' command", 2},
		{"-C -t 10.0.0.1:80", "Illegal 'service-address' option with the 'flush' command", 2},
		{"-D -t 10.0.0.1:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", 2},
		{"-Z -n", "Illegal 'numeric' option with the 'zero' command", 2},
		{"-S --stats", "Illegal 'stats' option with the 'save' command", 2},
		{"-d -t 10.0.0.1:80 -r 10.0.0.2 -w 1", "Illegal 'weight' option with the 'delete-server' command", 2},
		{"--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command", 2},
		{"-A -s rr", "You need to supply the 'service-address' option for the 'add-service' command", 2},
		{"-A -r 10.0.0.2", "You need to supply the 'service-address' option for the 'add-service' command", 2},
		{"-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command", 2},
		{"-e -t 10.0.0.1:80 -m", "You need to supply the 'real-server' option for the 'edit-server' command", 2},
		{"-L -c -t 10.0.0.1:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2},
		{"-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command", 2},
		// set_option.
		{"-A -t 10.0.0.1:80 -s rr -s wrr", "multiple 'scheduler' options specified", 2},
		{"-L -t 10.0.0.1:80 -u 10.0.0.1:80", "multiple 'service-address' options specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", "multiple 'forwarding-method' options specified", 2},
		{"-Lnn", "multiple 'numeric' options specified", 2},
		// process_options.
		{"-L -c --stats", "options conflicts in the list command", 2},
		{"-L --timeout --persistent-conn", "options conflicts in the list command", 2},
		{"-A -t 10.0.0.1", "Zero port specified for non-persistent service", 2},
		{"-A -t 10.0.0.1:53 -o", "One-Packet Scheduling is only for UDP virtual services", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type ipip", "Tunnel options conflict with forward method", 2},
		{"-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m", "Different address family is allowed only for tunneling servers", 2},
		// Values.
		{"-A -t 10.0.0.300:80", "illegal virtual server address[:port] specified", 2},
		{"-A -t www.example.com:80", "illegal virtual server address[:port] specified", 2},
		{"-A -t 10.0.0.1:99999", "illegal virtual server address[:port] specified", 2},
		{"-A -t 10.0.0.1:nosuchservice", "illegal virtual server address[:port] specified", 2},
		{"-A -t 80", "illegal virtual server address[:port] specified", 2},
		{"-A -t [2001:db8::1]", "illegal virtual server address[:port] specified", 2},
		{"-A --tcp-service=", "illegal virtual server address[:port] specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.x", "illegal real server address[:port] specified", 2},
		// A service name needs the protocol: -r before -t has none.
		{"-a -r 10.0.0.2:http -t 10.0.0.1:80 -m", "illegal real server address[:port] specified", 2},
		{"-A -f 0", "invalid fwmark value `0' specified", 2},
		{"-A -f abc", "invalid fwmark value `abc' specified", 2},
		{"-A -f 4294967296", "invalid fwmark value `4294967296' specified", 2},
		{"-A -t 10.0.0.1:80 -p 0", "invalid timeout value `0' specified", 2},
		{"-A -t 10.0.0.1:80 -p abc", "invalid timeout value `abc' specified", 2},
		{"-A -t 10.0.0.1:80 -p 2678401", "invalid timeout value `2678401' specified", 2},
		{"-A -t 10.0.0.1:80 -p -M foo", "illegal virtual server persistent mask specified", 2},
		{"-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536", "illegal weight specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "illegal weight specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -x 1x", "illegal u_threshold specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -y 2147483648", "illegal l_threshold specified", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan", "illegal tunnel type specified", 2},
		{"--set 900 120", "--set option requires 3 timeout values", 2},
		{"--set 900 120 x", "invalid timeout value `x' specified", 2},
		{"--set 1 2 3 4", "unexpected argument 4", 2},
		{"-L foo", "unexpected argument foo", 2},
		{"foo -L", "unexpected argument foo", 2},
		{"-A -t 10.0.0.1:80 -b sh-port", "incompatible scheduler flag `sh-port'", 2},
		{"-A -t 10.0.0.1:80 -s sh -b mh-port", "incompatible scheduler flag `mh-port'", 2},
		{"-A -t 10.0.0.1:80 -s sh -b sh-port,bogus", "invalid scheduler flag `bogus'", 2},
		// Flags are checked before the option table.
		{"-L -b bogus", "invalid scheduler flag `bogus'", 2},
		// uvs refusals.
		{"-A -t 10.0.0.1:80 -p -M 255.0.255.0", "illegal virtual server persistent mask specified", 2},
		{"-A -t 10.0.0.1:80 -p -M 0.0.0.0", "uvs: persistent mask 0.0.0.0 is not supported", 2},
		{"-L --daemon", "uvs: option --daemon is not supported", 2},
		{"--start-daemon master", "uvs: option --start-daemon is not supported", 2},
		{"-A --sctp-service 10.0.0.1:80", "uvs: option --sctp-service is not supported", 2},
		{"-A -f 1 -6", "uvs: option --ipv6 is not supported", 2},
		{"-A -t 10.0.0.1:80 --pe sip", "uvs: option --pe is not supported", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue", "uvs: tunnel type gue is not supported", 2},
	})
}

// Arguments are words, not a line: "--" ends the options, and an empty
// word is an argument.
func TestParseWords(t *testing.T) {
	if _, err := Parse([]string{"-A", "-t", "10.0.0.1:80", "--", "-s"}); err == nil || err.Error() != "unexpected argument -s" {
		t.Errorf("after --: %v", err)
	}
	if _, err := Parse([]string{"-L", ""}); err == nil || err.Error() != "unexpected argument " {
		t.Errorf("empty word: %v", err)
	}
	// popt skips one '=' after a short option.
	c, err := Parse([]string{"-A", "-t=10.0.0.1:80"})
	if err != nil || c.Service.Addr != vip {
		t.Errorf("-t=: %+v %v", c, err)
	}
}

func TestInetAton(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for invalid
	}{
		{"10.0.0.1", "10.0.0.1"},
		{"10.1", "10.0.0.1"},
		{"10.1.2", "10.1.0.2"},
		{"167772161", "10.0.0.1"},
		{"0x0a.0.0.01", "10.0.0.1"},
		{"012.0.0.1", "10.0.0.1"},
		{"10.0.0.1 trailing", "10.0.0.1"},
		{"255.255.255.255", "255.255.255.255"},
		{"256.0.0.1", ""},
		{"10.0.0.256", ""},
		{"10.0.0.1.1", ""},
		{"08.0.0.1", ""},
		{"0x", ""},
		{"1.2.3.4x", ""},
		{"", ""},
		{".1", ""},
		{"1..2", ""},
		{"4294967296", ""},
		{"10.16777216", ""},
	}
	for _, tt := range tests {
		a, ok := inetAton(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("inetAton(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		line string
		op   string
		svc  bool
		dest bool
	}{
		{"-A -t 10.0.0.1:80", control.OpAddService, true, false},
		{"-E -t 10.0.0.1:80", control.OpEditSvc, true, false},
		{"-D -t 10.0.0.1:80", control.OpDelService, true, false},
		{"-C", control.OpClear, false, false},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2", control.OpAddDest, true, true},
		{"-e -t 10.0.0.1:80 -r 10.0.0.2", control.OpEditDest, true, true},
		{"-d -t 10.0.0.1:80 -r 10.0.0.2", control.OpDelDest, true, true},
		{"--set 1 2 3", control.OpSetTimeout, false, false},
		{"-Z", control.OpZero, false, false},
		{"-Z -t 10.0.0.1:80", control.OpZero, true, false},
		{"-L", control.OpList, false, false},
		{"-L -t 10.0.0.1:80", control.OpList, true, false},
		{"-L -c", control.OpConns, false, false},
		{"-L --timeout", control.OpGetTimeout, false, false},
		{"-S", control.OpList, false, false},
	}
	for _, tt := range tests {
		c, err := Parse(strings.Fields(tt.line))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.line, err)
		}
		r, ok := c.Request()
		if !ok || r.Op != tt.op || (r.Service != nil) != tt.svc || (r.Dest != nil) != tt.dest {
			t.Errorf("%q: Request() = %+v, %v", tt.line, r, ok)
		}
	}
	for _, l := range []string{"-h", "-v", "-R"} {
		c, _ := Parse(strings.Fields(l))
		if _, ok := c.Request(); ok {
			t.Errorf("%q has a request", l)
		}
	}
}

func TestLegalTable(t *testing.T) {
	for k := CmdAddService; k <= CmdGetLAddr; k++ {
		if len(legal[k]) != numCols {
			t.Errorf("legal[%v] has %d columns, want %d", k, len(legal[k]), numCols)
		}
	}
}
