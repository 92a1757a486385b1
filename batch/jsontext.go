package batch

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// checkText refuses what encoding/json would let through a batch body
// silently, changing the batch's meaning:
//
//   - text that is not UTF-8, and \u escapes of lone surrogates: the
//     decoder turns both into U+FFFD, so two different ids become one
//     (a confusing "duplicate id") and a header value is sent other than
//     it was written;
//   - a name given twice in one of the batch's own objects (the batch,
//     an item, an item's headers): the decoder keeps the last, so
//     {"path": "/a", "path": "/b"} would run /b and a second "requests"
//     would drop the first list unseen.
//
// Names are compared as the decoder matches them to fields, unescaped
// and ignoring case (headers too: names differing only in case are one
// field). An item's body is sent upstream as written, so it is held only
// to UTF-8, as the whole text is; its object names and escapes are the
// upstream's to judge, as for the same request sent alone.
//
// data must be what decodeStrict accepted (one JSON value, so nesting is
// bounded by encoding/json); checkText reads it once, front to back.
func checkText(data []byte) *textProblem {
	s := &textScan{data: data, item: -1}
	s.space()
	return s.value(inTop)
}

// textProblem is what checkText found, and where: in the item at index
// item of "requests" (whose value starts at itemStart), or outside any
// item when item is -1. idUnsure: the problem is in the item's id, so
// the id read from the item is not the one to name it by.
type textProblem struct {
	msg       string
	item      int
	itemStart int
	idUnsure  bool
}

type textScan struct {
	data      []byte
	pos       int
	item      int // index in "requests" of the item being read; -1 outside
	itemStart int
}

// Where a value is in the batch: what its object's names mean.
type textPlace int

const (
	inTop      textPlace = iota // the batch object
	inRequests                  // the "requests" list
	inItem                      // an item object
	inHeaders                   // an item's "headers"
	inOther                     // any other value of ours: names not checked
	inBody                      // an item's body: UTF-8 only
)

func (s *textScan) fail(format string, args ...any) *textProblem {
	return &textProblem{msg: fmt.Sprintf(format, args...), item: s.item, itemStart: s.itemStart}
}

func (s *textScan) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads the value at s.pos, with what follows it up to the next
// token.
func (s *textScan) value(at textPlace) *textProblem {
	if s.pos >= len(s.data) {
		return s.fail("unexpected end of JSON input")
	}
	switch s.data[s.pos] {
	case '"':
		_, p := s.str(at != inBody, false)
		return p
	case '[':
		if at == inRequests {
			return s.items()
		}
		return s.skipNested(at)
	case '{':
		if at == inTop || at == inItem || at == inHeaders {
			return s.object(at)
		}
		return s.skipNested(at)
	}
	// A number or literal: ASCII only, as decodeStrict checked.
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == ',' || c == ':' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c >= utf8.RuneSelf {
			break
		}
		s.pos++
	}
	if s.pos == start {
		return s.fail("malformed JSON at byte %d", s.pos)
	}
	s.space()
	return nil
}

// next passes the comma after a member or element; anything but it or
// the closing bracket is not JSON, which decodeStrict would have refused.
func (s *textScan) next(closing byte) *textProblem {
	if s.pos < len(s.data) && s.data[s.pos] == ',' {
		s.pos++
		s.space()
		return nil
	}
	if s.pos < len(s.data) && s.data[s.pos] == closing {
		return nil
	}
	return s.fail("malformed JSON at byte %d", s.pos)
}

// items reads the "requests" list, noting which item each problem is in.
func (s *textScan) items() *textProblem {
	s.pos++ // [
	s.space()
	for i := 0; s.pos < len(s.data); i++ {
		if s.data[s.pos] == ']' {
			s.pos++
			s.space()
			return nil
		}
		s.item, s.itemStart = i, s.pos
		if p := s.value(inItem); p != nil {
			return p
		}
		s.item = -1
		if p := s.next(']'); p != nil {
			return p
		}
	}
	return s.fail("unexpected end of JSON input")
}

// object reads one of the batch's own objects, refusing a name given
// twice.
func (s *textScan) object(at textPlace) *textProblem {
	s.pos++ // {
	s.space()
	var seen nameSet
	for s.pos < len(s.data) {
		if s.data[s.pos] == '}' {
			s.pos++
			s.space()
			return nil
		}
		if s.data[s.pos] != '"' {
			return s.fail("malformed JSON at byte %d", s.pos)
		}
		name, p := s.str(true, true)
		if p != nil {
			return p
		}
		key := foldName(name)
		if first, dup := seen.add(key, name); dup {
			p := s.fail("%s given twice%s", describeName(at, name), alsoAs(first, name))
			p.idUnsure = at == inItem && key == "ID"
			return p
		}
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.fail("malformed JSON at byte %d", s.pos)
		}
		s.pos++
		s.space()
		next := inOther
		switch {
		case at == inTop && key == "REQUESTS":
			next = inRequests
		case at == inItem && key == "HEADERS":
			next = inHeaders
		case at == inItem && key == "BODY":
			next = inBody
		}
		if p := s.value(next); p != nil {
			if at == inItem && key == "ID" {
				p.idUnsure = true
			}
			return p
		}
		if p := s.next('}'); p != nil {
			return p
		}
	}
	return s.fail("unexpected end of JSON input")
}

func describeName(at textPlace, name string) string {
	if at == inHeaders {
		return "header " + name
	}
	return fmt.Sprintf("field %q", name)
}

func alsoAs(first, name string) string {
	if first == name {
		return ""
	}
	return fmt.Sprintf(" (also as %q; names are matched ignoring case)", first)
}

// skipNested reads an array or object whose names mean nothing to the
// batch (an item's body, or a value of the wrong type that decoding the
// item refuses with a clearer message), checking its strings only.
func (s *textScan) skipNested(at textPlace) *textProblem {
	depth := 0
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '"':
			if _, p := s.str(at != inBody, false); p != nil {
				return p
			}
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				s.pos++
				s.space()
				return nil
			}
		default:
			if s.data[s.pos] >= utf8.RuneSelf {
				return s.fail("malformed JSON at byte %d", s.pos)
			}
		}
		s.pos++
	}
	return s.fail("unexpected end of JSON input")
}

// str reads the string at s.pos, refusing text that is not UTF-8 and,
// with escapes, \u escapes of lone surrogates. With decode it returns
// the string unescaped (for names, which are short).
func (s *textScan) str(escapes, decode bool) (string, *textProblem) {
	s.pos++ // "
	var out []byte
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.space()
			return string(out), nil
		case c == '\\':
			if s.pos+1 >= len(s.data) {
				return "", s.fail("unexpected end of JSON input")
			}
			if s.data[s.pos+1] != 'u' {
				if decode {
					out = append(out, unescape(s.data[s.pos+1]))
				}
				s.pos += 2
				continue
			}
			r, n, lone := s.escapedRune()
			if n == 0 {
				return "", s.fail("malformed JSON at byte %d", s.pos)
			}
			if lone && escapes {
				return "", s.fail("%s at byte %d is half a surrogate pair, not a character", s.data[s.pos:s.pos+6], s.pos)
			}
			if decode {
				out = utf8.AppendRune(out, r)
			}
			s.pos += n
		case c < utf8.RuneSelf:
			if decode {
				out = append(out, c)
			}
			s.pos++
		default:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				return "", s.fail("invalid UTF-8 at byte %d", s.pos)
			}
			if decode {
				out = append(out, s.data[s.pos:s.pos+n]...)
			}
			s.pos += n
		}
	}
	return "", s.fail("unexpected end of JSON input")
}

// escapedRune reads the \uXXXX escape at s.pos, or a surrogate pair of
// two, as the rune and the bytes it takes: n is 0 when malformed, and
// lone reports a surrogate without its other half (which the decoder
// turns into U+FFFD).
func (s *textScan) escapedRune() (r rune, n int, lone bool) {
	r = hex4(s.data[s.pos:])
	switch {
	case r < 0:
		return 0, 0, false
	case r < 0xd800 || r > 0xdfff:
		return r, 6, false
	case r < 0xdc00:
		if lo := hex4(s.data[s.pos+6:]); 0xdc00 <= lo && lo <= 0xdfff {
			return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12, false
		}
	}
	return utf8.RuneError, 6, true
}

// hex4 is the value of the escape `\uXXXX` at the start of b, or -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func unescape(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\', '/'
}

// foldName is name as encoding/json matches it to a field: ASCII upper
// case, and each other rune the smallest of its case-folding orbit.
func foldName(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= utf8.RuneSelf || 'a' <= c && c <= 'z' {
			ascii = false
			break
		}
	}
	if ascii {
		return name
	}
	out := make([]byte, 0, len(name))
	for _, r := range name {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			out = append(out, byte(r))
			continue
		}
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// nameSet holds an object's folded names with their first spelling; a
// map only once the object has many, as headers may.
type nameSet struct {
	list []struct{ key, name string }
	m    map[string]string
}

// add records key, or reports the spelling it was first given in.
func (n *nameSet) add(key, name string) (first string, dup bool) {
	if n.m != nil {
		if first, dup = n.m[key]; !dup {
			n.m[key] = name
		}
		return first, dup
	}
	for _, e := range n.list {
		if e.key == key {
			return e.name, true
		}
	}
	if len(n.list) == 16 {
		n.m = make(map[string]string, 32)
		for _, e := range n.list {
			n.m[e.key] = e.name
		}
		n.m[key] = name
		return "", false
	}
	n.list = append(n.list, struct{ key, name string }{key, name})
	return "", false
}
