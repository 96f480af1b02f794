package ipvsadm

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/control"
)

// apply plays -A and -a commands onto a table, as uvsd would.
func apply(t *testing.T, cmds []*Command) []control.Service {
	t.Helper()
	var out []control.Service
	find := func(s control.Service) *control.Service {
		for i := range out {
			o := &out[i]
			if o.FWMark == s.FWMark && o.Proto == s.Proto && o.Addr == s.Addr && o.Port == s.Port {
				return o
			}
		}
		return nil
	}
	for _, c := range cmds {
		switch c.Kind {
		case CmdAddService:
			out = append(out, c.Service)
		case CmdAddDest:
			s := find(c.Service)
			if s == nil {
				t.Fatalf("-a for unknown service %+v", c.Service)
			}
			s.Dests = append(s.Dests, c.Dest)
		case CmdAddLAddr:
			s := find(c.Service)
			if s == nil {
				t.Fatalf("--add-laddr for unknown service %+v", c.Service)
			}
			s.LocalAddrs = append(s.LocalAddrs, control.LocalAddr{Addr: c.LocalAddr})
		default:
			t.Fatalf("unexpected command %v", c.Kind)
		}
	}
	return out
}

// saved is what a save/restore cycle keeps of a table: no counters
// (of services, destinations or local addresses), no
// thresholds (ipvsadm -S does not write -x/-y), Local saved as -g and
// so read back as Route, and Route/Tunnel destinations of non-fwmark
// services on the service's port (ipvsadm forces it).
func saved(svcs []control.Service) []control.Service {
	out := sortServices(svcs, false)
	for i := range out {
		s := &out[i]
		s.Stats = control.Stats{}
		if len(s.SchedFlags) == 0 {
			s.SchedFlags = nil
		}
		s.Dests = sortDests(s.Dests, false)
		for j := range s.Dests {
			d := &s.Dests[j]
			if d.Fwd == control.FwdLocal {
				d.Fwd = control.FwdRoute
			}
			if s.FWMark == 0 && (d.Fwd == control.FwdRoute || d.Fwd == control.FwdTunnel) {
				d.Port = s.Port
			}
			*d = control.Dest{Addr: d.Addr, Port: d.Port, Fwd: d.Fwd, Weight: d.Weight}
		}
		if len(s.Dests) == 0 {
			s.Dests = nil
		}
		// Local addresses keep their order; counts are not saved.
		var las []control.LocalAddr
		for _, la := range s.LocalAddrs {
			las = append(las, control.LocalAddr{Addr: la.Addr})
		}
		s.LocalAddrs = las
	}
	return out
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	for _, numeric := range []bool{false, true} {
		var b bytes.Buffer
		if err := WriteSave(&b, state(), numeric); err != nil {
			t.Fatal(err)
		}
		cmds, err := ParseRestore(&b)
		if err != nil {
			t.Fatalf("numeric=%v: ParseRestore: %v", numeric, err)
		}
		got, want := apply(t, cmds), saved(state())
		if !reflect.DeepEqual(got, want) {
			t.Errorf("numeric=%v: round trip\n got %+v\nwant %+v", numeric, got, want)
		}
		// A second cycle changes nothing more.
		var again, first bytes.Buffer
		if err := WriteSave(&again, got, numeric); err != nil {
			t.Fatal(err)
		}
		WriteSave(&first, want, numeric)
		if again.String() != first.String() {
			t.Errorf("numeric=%v: second save differs:\n%s\nvs\n%s", numeric, again.String(), first.String())
		}
	}
}

func TestParseRestore(t *testing.T) {
	in := "" +
		"# saved by hand\n" +
		"\n" +
		"ipvsadm -A -t 10.0.0.1:80 -s rr   # the web VIP\n" +
		"  \t-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1\r\n" +
		"-a\t-t 10.0.0.1:80 -r 10.0.0.3:80 -m ipvsadm -w 2\n" +
		"ipvsadm\n"
	cmds, err := ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := apply(t, cmds)
	want := []control.Service{{Proto: "TCP", Addr: vip, Port: 80, Sched: "rr", Netmask: 32, Dests: []control.Dest{
		{Addr: rip2, Port: 80, Fwd: "Masq", Weight: 1},
		{Addr: ip("10.0.0.3"), Port: 80, Fwd: "Masq", Weight: 2},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestParseRestoreErrors(t *testing.T) {
	tests := []struct {
		in   string
		n    int // commands before the error
		line int
		msg  string
	}{
		{"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000\n", 1, 2, "illegal weight specified"},
		{"-C\n\n-R\n", 1, 3, try},
		{"-t 10.0.0.1:80\n", 0, 1, try},
	}
	for _, tt := range tests {
		cmds, err := ParseRestore(strings.NewReader(tt.in))
		var e *Error
		if !errors.As(err, &e) || e.Msg != tt.msg || e.Line != tt.line || len(cmds) != tt.n {
			t.Errorf("ParseRestore(%q) = %d commands, %#v; want %d, line %d %q", tt.in, len(cmds), err, tt.n, tt.line, tt.msg)
		}
	}
}

// libipvs's wrapped comparison: addresses more than 2^31 apart sort the
// wrong way round, and ipvsadm prints them so.
func TestSortLikeLibipvs(t *testing.T) {
	svcs := []control.Service{
		{Proto: "TCP", Addr: ip("10.0.0.1"), Port: 80},
		{Proto: "UDP", Addr: ip("10.0.0.1"), Port: 53},
		{FWMark: 2},
		{Proto: "TCP", Addr: ip("192.168.0.1"), Port: 80},
		{Proto: "TCP", Addr: ip("2001:db8::1"), Port: 80},
		{FWMark: 1},
		{Proto: "TCP", Addr: ip("10.0.0.1"), Port: 22},
	}
	var got []string
	for _, s := range sortServices(svcs, false) {
		var b bytes.Buffer
		writeEntry(&b, &s, ListOptions{Numeric: true}, true)
		got = append(got, strings.TrimSpace(b.String()))
	}
	want := []string{
		"-A -t 192.168.0.1:80 -s ",
		"-A -t 10.0.0.1:22 -s ",
		"-A -t 10.0.0.1:80 -s ",
		"-A -u 10.0.0.1:53 -s ",
		"-A -t [2001:db8::1]:80 -s ",
		"-A -f 1 -s ",
		"-A -f 2 -s ",
	}
	for i := range want {
		want[i] = strings.TrimSpace(want[i])
	}
	if !slices.Equal(got, want) {
		t.Errorf("order\n got %q\nwant %q", got, want)
	}
}
