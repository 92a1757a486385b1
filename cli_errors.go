package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gateway/app"
	"gateway/config"
)

// flagSource is the flag a field of a generated config came from, and
// the value as typed.
type flagSource struct {
	flag, typed, generated string
}

// flagFields maps the field paths of a config generated from flags
// (gateway proxy, gateway demo) to those flags, so that a problem names
// the flag to change rather than a line of a file the operator never
// saw.
type flagFields map[string]flagSource

// add maps path to flag, whose value was typed and became generated in
// the config.
func (m flagFields) add(path, flag, typed, generated string) {
	m[path] = flagSource{flag: flag, typed: typed, generated: generated}
}

// explain rewrites the problems in err, from parsing the generated
// config or binding its sockets, in terms of the flags: `--to "ftp://x":
// scheme must be http or https`. cmd names the command for a problem
// no flag maps to.
func (m flagFields) explain(cmd string, err error) error {
	var le *app.ListenError
	if errors.As(err, &le) {
		if src, ok := m.lookup(le.Field); ok {
			if le.InUse() {
				return fmt.Errorf("%s %s is in use; pick another with %s", src.flag, src.typed, src.flag)
			}
			return fmt.Errorf("%s %s: %w", src.flag, src.typed, le.Err)
		}
		return err
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		// A problem found when the gateway starts (a job store that
		// cannot be opened) is "field: why".
		if err != nil {
			if f, msg, ok := strings.Cut(err.Error(), ": "); ok && !strings.ContainsAny(f, " \t") {
				if src, ok := m.lookup(f); ok {
					return errors.New(src.message(msg))
				}
			}
		}
		return err
	}
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		src, ok := m.lookup(e.Field)
		if !ok {
			var b strings.Builder
			b.WriteString(cmd)
			b.WriteString(": ")
			if e.Field != "" {
				b.WriteString(e.Field + ": ")
			}
			b.WriteString(e.Msg)
			lines = append(lines, b.String())
			continue
		}
		lines = append(lines, src.message(e.Msg))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// lookup finds the flag of path, or of its nearest mapped parent.
func (m flagFields) lookup(path string) (flagSource, bool) {
	for p := path; p != ""; p = parent(p) {
		if src, ok := m[p]; ok {
			return src, true
		}
	}
	return flagSource{}, false
}

func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// message is `--flag "typed": msg`, with the value the config quoted in
// msg left out as it is said once already.
func (s flagSource) message(msg string) string {
	q := strconv.Quote(s.generated)
	msg = strings.TrimPrefix(msg, q+": ")
	if m, ok := strings.CutPrefix(msg, q+" "); ok {
		msg = m // `"b" must be host:port`
	} else {
		msg = strings.Replace(msg, " "+q, "", 1)
	}
	head := s.flag + " " + strconv.Quote(s.typed)
	if s.typed != s.generated {
		head += " (taken as " + q + ")"
	}
	return head + ": " + msg
}

// explainListen adds, to a config file's socket that cannot be bound,
// the file, line and field of its address: `gateway.yaml:3:
// listeners[0].address: 127.0.0.1:8080 is in use; pick another port`.
func explainListen(path string, err error) error {
	var le *app.ListenError
	if !errors.As(err, &le) {
		return err
	}
	line := 0
	if data, rerr := os.ReadFile(path); rerr == nil {
		line = config.FieldLine(data, le.Field)
	}
	msg := le.Err.Error()
	if le.InUse() {
		msg = le.Address + " is in use; pick another port"
	}
	return &config.Error{File: path, Line: line, Field: le.Field, Msg: msg}
}
