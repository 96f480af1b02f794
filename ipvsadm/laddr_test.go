package ipvsadm

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/control"
)

// The LVS-FULLNAT ipvsadm's local address commands: -P/--add-laddr,
// -Q/--del-laddr with -t|-u|-f and -z/--laddr, -G/--get-laddr.
func TestParseLocalAddr(t *testing.T) {
	lip := ip("10.0.0.200")
	add := Command{Kind: CmdAddLAddr, HasService: true, Service: tcp("10.0.0.1", 80), LocalAddr: lip}
	checkParse(t, []parseCase{
		{"-P -t 10.0.0.1:80 -z 10.0.0.200", add},
		{"--add-laddr --tcp-service=10.0.0.1:http --laddr=10.0.0.200", add},
		// Options in any order, short ones combined.
		{"-Pz 10.0.0.200 -t 10.0.0.1:80", add},
		// The fork parses host[:port] and keeps the address.
		{"-P -t 10.0.0.1:80 -z 10.0.0.200:9999", add},
		{"-P -u 10.0.0.1:53 -z 10.0.0.200", Command{Kind: CmdAddLAddr, HasService: true,
			Service: control.Service{Proto: "UDP", Addr: vip, Port: 53, Netmask: 32}, LocalAddr: lip}},
		{"-P -f 7 -z 10.0.0.200", Command{Kind: CmdAddLAddr, HasService: true, Service: control.Service{FWMark: 7, Netmask: 32}, LocalAddr: lip}},
		{"-Q -t 10.0.0.1:80 -z 10.0.0.200", Command{Kind: CmdDelLAddr, HasService: true, Service: tcp("10.0.0.1", 80), LocalAddr: lip}},
		{"--del-laddr -t 10.0.0.1:80 -z 10.0.0.200", Command{Kind: CmdDelLAddr, HasService: true, Service: tcp("10.0.0.1", 80), LocalAddr: lip}},
		{"-G", Command{Kind: CmdGetLAddr}},
		{"--get-laddr", Command{Kind: CmdGetLAddr}},
		{"-G -t 10.0.0.1:80", Command{Kind: CmdGetLAddr, HasService: true, Service: tcp("10.0.0.1", 80)}},
		{"-G -n", Command{Kind: CmdGetLAddr, List: ListOptions{Numeric: true}}},
	})
}

func TestParseLocalAddrErrors(t *testing.T) {
	checkParseErrors(t, []parseErrorCase{
		{"-P -t 10.0.0.1:80", "You need to supply the 'local-address' option for the 'add-laddr' command", 2},
		{"-Q -t 10.0.0.1:80", "You need to supply the 'local-address' option for the 'del-laddr' command", 2},
		{"-P -z 10.0.0.200", "You need to supply the 'service-address' option for the 'add-laddr' command", 2},
		{"-P -t 10.0.0.1:80 -z 10.0.0.200 -s rr", "Illegal 'scheduler' option with the 'add-laddr' command", 2},
		{"-P -t 10.0.0.1:80 -z 10.0.0.200 -n", "Illegal 'numeric' option with the 'add-laddr' command", 2},
		{"-G -z 10.0.0.200", "Illegal 'local-address' option with the 'get-laddr' command", 2},
		{"-G -c", "Illegal 'connection' option with the 'get-laddr' command", 2},
		{"-A -t 10.0.0.1:80 -z 10.0.0.200", "Illegal 'local-address' option with the 'add-service' command", 2},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2 -k -z 10.0.0.200", "Illegal 'local-address' option with the 'add-server' command", 2},
		{"-L -z 10.0.0.200", "Illegal 'local-address' option with the 'list' command", 2},
		{"-P -t 10.0.0.1:80 -z 10.0.0.200 -z 10.0.0.201", "multiple 'local-address' options specified", 2},
		{"-P -t 10.0.0.1:80 -z 10.0.0.x", "illegal local address", 2},
		{"-P -t 10.0.0.1:80 -z 200", "illegal local address", 2},
		{"-P -t 10.0.0.1:80 -z", "-z: missing argument", 255},
		{"-P -G", "invalid option `-G'", 2},
		{"-L -P", "invalid option `-P'", 2},
		{"-P -t 10.0.0.1:80 -z 10.0.0.200 junk", "unexpected argument junk", 2},
	})
}

func TestLocalAddrRequest(t *testing.T) {
	tests := []struct {
		line string
		want control.Request
	}{
		{"-P -t 10.0.0.1:80 -z 10.0.0.200", control.Request{Op: control.OpAddLAddr, Service: &control.Service{Proto: "TCP", Addr: vip, Port: 80, Netmask: 32}, LocalAddr: ip("10.0.0.200")}},
		{"-Q -f 3 -z 10.0.0.201", control.Request{Op: control.OpDelLAddr, Service: &control.Service{FWMark: 3, Netmask: 32}, LocalAddr: ip("10.0.0.201")}},
		{"-G", control.Request{Op: control.OpGetLAddr}},
		{"-G -u 10.0.0.1:53", control.Request{Op: control.OpGetLAddr, Service: &control.Service{Proto: "UDP", Addr: vip, Port: 53, Netmask: 32}}},
	}
	for _, tt := range tests {
		c, err := Parse(strings.Fields(tt.line))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.line, err)
		}
		r, ok := c.Request()
		if !ok || !reflect.DeepEqual(r, tt.want) {
			t.Errorf("%q: Request() = %+v, %v; want %+v", tt.line, r, ok, tt.want)
		}
	}
}

// -G written out by hand from the fork's printf formats, trailing blanks
// included, independently of laddr.golden: the title once, the service
// line "%-20s %-8u \n" (a blank before the newline), an address line
// per local address.
func TestLocalAddrsByHand(t *testing.T) {
	svcs := []control.Service{
		{Proto: "TCP", Addr: ip("198.18.0.100"), Port: 80, Sched: "rr",
			LocalAddrs: []control.LocalAddr{{Addr: ip("198.19.0.200"), Conns: 7}, {Addr: ip("198.19.0.201")}}},
		{Proto: "TCP", Addr: ip("10.0.0.1"), Port: 443, Sched: "wlc"},
	}
	want := "" +
		//  %-20s                  %-8s      %-20s                  %-10s       %-10s
		"VIP:VPORT            TOTAL    LADDR                CONFLICTS  CONNS     \n" +
		"198.18.0.100:80      2        \n" +
		"                              198.19.0.200         0          7         \n" +
		"                              198.19.0.201         0          0         \n" +
		// libipvs's wrapped comparison puts 198.x before 10.x.
		"10.0.0.1:443         0        \n"
	wantWritten(t, func(b *bytes.Buffer) error { return WriteLocalAddrs(b, svcs) }, want)
	// No services: nothing at all, as list_all_laddrs prints the title
	// with the first service.
	wantWritten(t, func(b *bytes.Buffer) error { return WriteLocalAddrs(b, nil) }, "")
}

// -R takes the fork's own lines (-P ... -z) and uvs's saved ones alike,
// and -S writes the local addresses after the service's other lines so
// that each one follows the -A it needs.
func TestRestoreLocalAddrs(t *testing.T) {
	in := "-A -t 198.18.0.100:80 -s rr\n" +
		"-a -t 198.18.0.100:80 -r 198.19.64.11:80 --fullnat -w 1\n" +
		"-P -t 198.18.0.100:80 -z 198.19.0.201\n" +
		"--add-laddr -t 198.18.0.100:http -z 198.19.0.200\n"
	cmds, err := ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := apply(t, cmds)
	want := []control.Service{{Proto: "TCP", Addr: ip("198.18.0.100"), Port: 80, Sched: "rr", Netmask: 32,
		Dests:      []control.Dest{{Addr: ip("198.19.64.11"), Port: 80, Fwd: control.FwdFullNat, Weight: 1}},
		LocalAddrs: []control.LocalAddr{{Addr: ip("198.19.0.201")}, {Addr: ip("198.19.0.200")}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	const saved = "-A -t 198.18.0.100:80 -s rr\n" +
		"-a -t 198.18.0.100:80 -r 198.19.64.11:80 --fullnat -w 1\n" +
		"--add-laddr -t 198.18.0.100:80 -z 198.19.0.201\n" +
		"--add-laddr -t 198.18.0.100:80 -z 198.19.0.200\n"
	if s := written(t, func(b *bytes.Buffer) error { return WriteSave(b, got, true) }); s != saved {
		t.Errorf("-S -n wrote\n%s\nwant\n%s", s, saved)
	}
}
