package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tokKind is what a token is. keepalived's grammar is line-oriented, so
// the end of a line is a token too.
type tokKind uint8

const (
	tokWord  tokKind = iota
	tokOpen          // {
	tokClose         // }
	tokEOL
)

type token struct {
	kind tokKind
	s    string
	pos  Pos
}

// fileSystem is where includes are found: the host's files, or none at
// all (fuzzing).
type fileSystem interface {
	Glob(pattern string) ([]string, error)
	Open(name string) (io.ReadCloser, error)
}

type osFiles struct{}

func (osFiles) Glob(pattern string) ([]string, error)   { return filepath.Glob(pattern) }
func (osFiles) Open(name string) (io.ReadCloser, error) { return os.Open(name) }

// errNoIncludes is what a fileSystem without files answers.
var errNoIncludes = errors.New("includes are disabled")

type noFiles struct{}

func (noFiles) Glob(string) ([]string, error)      { return nil, errNoIncludes }
func (noFiles) Open(string) (io.ReadCloser, error) { return nil, errNoIncludes }

const (
	maxIncludeDepth = 32
	maxLineLen      = 1 << 20
)

// lexer turns files into one token stream: includes are expanded where
// they stand, as keepalived does, so a block may open in one file and
// close in another.
type lexer struct {
	files    fileSystem
	toks     []token
	warnings []Diag
	stack    []string // files being read, for include loops
	params   map[string]string
}

// file reads one file. dir is the directory relative includes of this
// file are resolved against ("" is the working directory).
func (lx *lexer) file(name, dir string, r io.Reader) error {
	if len(lx.stack) >= maxIncludeDepth {
		return &Error{Pos: Pos{name, 0}, Msg: "include nesting too deep"}
	}
	lx.stack = append(lx.stack, name)
	defer func() { lx.stack = lx.stack[:len(lx.stack)-1] }()

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	line := 0
	for sc.Scan() {
		line++
		pos := Pos{name, line}
		text := sc.Text()
		trimmed := strings.TrimLeft(text, " \t")
		if strings.HasPrefix(trimmed, "@") {
			lx.warn(pos, "conditional configuration (@) is not supported, line ignored")
			continue
		}
		if strings.HasPrefix(trimmed, "$") {
			if name, value, ok := paramDef(trimmed); ok {
				if lx.params == nil {
					lx.params = map[string]string{}
				}
				lx.params[name] = value
				continue
			}
		}
		if len(lx.params) > 0 && strings.Contains(text, "$") {
			text = lx.substitute(text)
		}
		words, err := splitLine(text, pos)
		if err != nil {
			return err
		}
		if len(words) > 0 && !words[0].quoted && isInclude(words[0].s) {
			if err := lx.include(pos, dir, words); err != nil {
				return err
			}
			continue
		}
		for _, w := range words {
			k := tokWord
			if !w.quoted {
				switch w.s {
				case "{":
					k = tokOpen
				case "}":
					k = tokClose
				}
			}
			lx.toks = append(lx.toks, token{kind: k, s: w.s, pos: pos})
		}
		if len(words) > 0 {
			lx.toks = append(lx.toks, token{kind: tokEOL, pos: pos})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &Error{Pos: Pos{name, line + 1}, Msg: "line too long", Err: err}
		}
		return &Error{Pos: Pos{name, line}, Msg: "read: " + err.Error(), Err: err}
	}
	return nil
}

func (lx *lexer) warn(pos Pos, format string, a ...any) {
	lx.warnings = append(lx.warnings, Diag{pos, fmt.Sprintf(format, a...)})
}

// isInclude reports whether w is include or one of its checked variants
// (includer, includem, includew, includeb, includea).
func isInclude(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// include expands an include line. The plain include (and includer)
// tolerates a pattern that matches nothing, with a warning; the checked
// variants refuse it.
func (lx *lexer) include(pos Pos, dir string, words []word) error {
	kw := words[0].s
	if len(words) != 2 {
		return &Error{Pos: pos, Msg: kw + ": want one file name or pattern"}
	}
	pat := words[1].s
	if !filepath.IsAbs(pat) && dir != "" {
		pat = filepath.Join(dir, pat)
	}
	names, err := lx.files.Glob(pat)
	if err != nil {
		return &Error{Pos: pos, Msg: fmt.Sprintf("%s %s: %v", kw, words[1].s, err), Err: err}
	}
	if len(names) == 0 {
		if kw == "include" || kw == "includer" {
			lx.warn(pos, "%s %s: no file matches", kw, words[1].s)
			return nil
		}
		return &Error{Pos: pos, Msg: fmt.Sprintf("%s %s: no file matches", kw, words[1].s)}
	}
	for _, n := range names {
		for _, open := range lx.stack {
			if sameFile(open, n) {
				return &Error{Pos: pos, Msg: fmt.Sprintf("%s %s: include loop through %s", kw, words[1].s, n)}
			}
		}
		f, err := lx.files.Open(n)
		if err != nil {
			return &Error{Pos: pos, Msg: fmt.Sprintf("%s: %v", kw, err), Err: err}
		}
		err = lx.file(n, filepath.Dir(n), f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// paramDef recognises a keepalived parameter definition, $NAME=value.
func paramDef(s string) (name, value string, ok bool) {
	eq := strings.IndexByte(s, '=')
	if eq < 2 {
		return "", "", false
	}
	name = s[1:eq]
	for i := 0; i < len(name); i++ {
		if !isParamChar(name[i]) {
			return "", "", false
		}
	}
	return name, strings.TrimSpace(s[eq+1:]), true
}

func isParamChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// substitute replaces $NAME and ${NAME} by defined parameters; undefined
// ones are left as written.
func (lx *lexer) substitute(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		j, name := i+1, ""
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			name, j = s[j+1:j+end], j+end+1
		} else {
			for j < len(s) && isParamChar(s[j]) {
				j++
			}
			name = s[i+1 : j]
		}
		v, ok := lx.params[name]
		if !ok {
			b.WriteByte('$')
			continue
		}
		b.WriteString(v)
		i = j - 1
	}
	return b.String()
}

type word struct {
	s      string
	quoted bool // some of it was quoted: never a brace, never a keyword of the lexer
}

// splitLine splits a line into words as keepalived does: whitespace
// separates, '#' and '!' start a comment, braces are words of their own,
// and "..." or '...' quote (with backslash escapes) and join what they
// touch.
func splitLine(s string, pos Pos) ([]word, error) {
	var out []word
	var cur strings.Builder
	in, quoted, have := byte(0), false, false
	flush := func() {
		if have {
			out = append(out, word{cur.String(), quoted})
			cur.Reset()
			have, quoted = false, false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if in != 0 {
			switch {
			case c == in:
				in = 0
			case c == '\\' && i+1 < len(s):
				n := unescape(s[i+1:], &cur)
				i += n
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case '"', '\'':
			in, quoted, have = c, true, true
		case '#', '!':
			flush()
			return out, nil
		case '{', '}':
			flush()
			out = append(out, word{s: string(c)})
		case ' ', '\t', '\r', '\v', '\f':
			flush()
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if in != 0 {
		return nil, &Error{Pos: pos, Msg: "unterminated quoted string"}
	}
	flush()
	return out, nil
}

// unescape writes the character escaped at the start of s (what follows
// a backslash) and says how many bytes of s it used.
func unescape(s string, b *strings.Builder) int {
	switch c := s[0]; c {
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'E':
		b.WriteByte(0x1b)
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case 'x':
		n := 1
		for n < 3 && n < len(s) && isHex(s[n]) {
			n++
		}
		if n == 1 {
			b.WriteByte('x')
			return 1
		}
		v, _ := strconv.ParseUint(s[1:n], 16, 8)
		b.WriteByte(byte(v))
		return n
	case 'c':
		if len(s) < 2 {
			b.WriteByte('c')
			return 1
		}
		b.WriteByte(s[1] & 0x1f)
		return 2
	default:
		if c >= '0' && c <= '7' {
			n := 1
			for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
				n++
			}
			v, _ := strconv.ParseUint(s[:n], 8, 16)
			b.WriteByte(byte(v))
			return n
		}
		b.WriteByte(c)
	}
	return 1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
