package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, that a refusal
// is always an *Error with a position, and that an accepted
// configuration expands. Includes are disabled: the fuzzer must not
// read the host's files.
func FuzzParse(f *testing.F) {
	f.Add(minimalVS)
	f.Add("virtual_server_group G {\n 10.0.0.1-3 80\n fwmark 1\n}\nvirtual_server group G {\n real_server 10.0.0.9 80 { }\n}\n")
	f.Fuzz(func(t *testing.T, conf string) {
		c, err := parse("fuzz.conf", "", strings.NewReader(conf), noFiles{})
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v is not *Error", err, err)
			}
			if ce.Pos.File != "fuzz.conf" {
				t.Fatalf("error position %v", ce.Pos)
			}
			return
		}
		for _, w := range c.Warnings {
			if w.Pos.Line < 1 {
				t.Fatalf("warning without a line: %v", w)
			}
		}
		_ = c.ExpandedServices()
	})
}
