package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a config file.
type Error struct {
	File  string
	Line  int    // 1-based; 0 when the YAML parser gave no line
	Field string // path such as "routes[1].timeout"; empty for syntax errors
	Msg   string
}

// Error formats the problem as FILE:LINE: FIELD: MSG, the form compilers
// use, so editors and grep can take the operator straight to the line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(oneLine(e.Field))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// oneLine keeps each problem on its own line of output whatever text
// from the file ended up in it.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Errors is every problem found in one file, sorted by line. Parse and
// Load return it as their error; use errors.As to get the list.
type Errors []*Error

// Error joins the problems one per line.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find an *Error inside.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
