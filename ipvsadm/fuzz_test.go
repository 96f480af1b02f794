package ipvsadm

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/uvs-project/uvs/control"
)

// FuzzParse feeds Parse command lines split at blanks (runs of blanks
// give empty words). Parse must not panic, must fail only with *Error,
// and what it accepts must survive the printers; services and
// destinations it builds must read back from their -S lines.
// Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		c, err := Parse(args)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Msg == "" {
				t.Fatalf("Parse(%q): error %#v is not an *Error", line, err)
			}
			return
		}
		c.Request()
		svc := c.Service
		if c.Kind == CmdAddDest || c.Kind == CmdEditDest {
			svc.Dests = []control.Dest{c.Dest}
		}
		for _, o := range []ListOptions{{}, {Numeric: true, Stats: true}, {Rate: true, Exact: true}, {Thresholds: true}, {PersistentConn: true}, {TunInfo: true}} {
			if err := WriteList(io.Discard, info, []control.Service{svc}, o); err != nil {
				t.Fatal(err)
			}
		}
		switch c.Kind {
		case CmdAddService, CmdEditService, CmdAddDest, CmdEditDest:
		default:
			return
		}
		if strings.ContainsFunc(svc.Sched, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }) {
			return // a blank in a scheduler name splits the saved line, in ipvsadm too
		}
		if f := flagBits(svc.SchedFlags); f&flagSched3 != 0 && (svc.Sched == "sh" || svc.Sched == "mh") {
			return // ipvsadm prints "-b " with nothing after it
		}
		var b bytes.Buffer
		if err := WriteSave(&b, []control.Service{svc}, true); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		want := "-A"
		if c.Kind == CmdAddDest || c.Kind == CmdEditDest {
			want = "-a"
		}
		var saved string
		for _, l := range lines {
			if strings.HasPrefix(l, want+" ") {
				saved = l
			}
		}
		back, err := Parse(strings.Split(saved, " "))
		if err != nil {
			t.Fatalf("%q saved as %q, which fails: %v", line, saved, err)
		}
		switch want {
		case "-A":
			got, exp := normSvc(back.Service), normSvc(c.Service)
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("%q saved as %q reads back as\n%+v\nwant\n%+v", line, saved, got, exp)
			}
		case "-a":
			exp := c.Dest
			exp.UThreshold, exp.LThreshold = 0, 0 // not saved
			if !reflect.DeepEqual(back.Dest, exp) {
				t.Fatalf("%q saved as %q reads back as\n%+v\nwant\n%+v", line, saved, back.Dest, exp)
			}
		}
	})
}

// normSvc drops what -S does not save of a service parsed from -A: the
// mask of a service that is not persistent.
func normSvc(s control.Service) control.Service {
	if !s.Persistent {
		s.Netmask = 0
	}
	return s
}

// FuzzParseRestore: ParseRestore must not panic and must fail only with
// a located *Error. Seeds: testdata/fuzz/FuzzParseRestore.
func FuzzParseRestore(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		_, err := ParseRestore(strings.NewReader(in))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line == 0 {
				t.Fatalf("ParseRestore(%q): error %#v", in, err)
			}
		}
	})
}
