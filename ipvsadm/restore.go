package ipvsadm

import (
	"bufio"
	"io"
	"strings"
)

// ParseRestore reads ipvsadm -R's input: one command line per line,
// words separated by blanks, the word "ipvsadm" ignored wherever it
// stands, blank lines skipped and a '#' starting a comment. ipvsadm
// stops at the first line it refuses, having applied the lines before
// it; ParseRestore returns the commands before that line with the
// *Error, its Line set. -R inside the input is refused as ipvsadm
// refuses it.
func ParseRestore(r io.Reader) ([]*Command, error) {
	var cmds []*Command
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		var args []string
		for _, f := range strings.FieldsFunc(text, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r'
		}) {
			if f != "ipvsadm" {
				args = append(args, f)
			}
		}
		if len(args) == 0 {
			continue
		}
		c, err := Parse(args)
		if err == nil && c.Kind == CmdRestore {
			err = tryHelp()
		}
		if err != nil {
			e := err.(*Error)
			e.Line = line
			return cmds, e
		}
		cmds = append(cmds, c)
	}
	if err := sc.Err(); err != nil {
		return cmds, &Error{Msg: err.Error(), Status: 1, Line: line + 1}
	}
	return cmds, nil
}
