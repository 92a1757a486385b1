package config

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML parser's errors give the line of the construct it was in
// (often the mapping that holds the mistake) rather than the line of the
// mistake, and no field. syntaxError finds the mistake's line by parsing
// ever longer prefixes of the file: the first that fails as the whole
// file does ends on it. It then names the last field before it, quotes
// the line, and, for the common mistakes, says what to check.

// maxSyntaxLines bounds the prefix search; a longer file gets the
// parser's line. Up to linearLines the search tries every prefix, whose
// cost grows with the square of the length; beyond, it bisects, taking
// a prefix that fails as the file does to hold the mistake.
const (
	maxSyntaxLines = 20000
	linearLines    = 300
)

// syntaxError is the Error for the parser's message msg at line (the
// parser's own guess, or 0) in data.
func syntaxError(file string, data []byte, line int, msg string) *Error {
	lines := strings.SplitAfter(string(data), "\n")
	at := 0
	if len(lines) <= maxSyntaxLines {
		at = firstFailing(lines, msg, line)
	}
	if at == 0 {
		return &Error{File: file, Line: line, Msg: msg}
	}
	text := strings.TrimRight(lines[at-1], "\r\n")
	good := lastParsing(lines, at-1)
	var b strings.Builder
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		// "key value" without its colon, then "key: value" on the next
		// line: the first is a plain text that runs on into the second,
		// where the colon is not allowed.
		if n := openScalar(good, at); n > 0 && n < at {
			stext := strings.TrimRight(lines[n-1], "\r\n")
			b.WriteString(strconv.Quote(stext))
			b.WriteString(" has no ':' after its key, so its value runs on into line ")
			b.WriteString(strconv.Itoa(at))
			b.WriteString(" (" + msg + ")")
			return &Error{File: file, Line: n, Field: lastKey(good, n), Msg: b.String()}
		}
		b.WriteString(msg + " in " + strconv.Quote(text) + ": a value holding \": \" needs quotes")
	default:
		b.WriteString(msg + " in " + strconv.Quote(text))
		if hint := syntaxHint(msg, text); hint != "" {
			b.WriteString(": " + hint)
		}
	}
	if k := lastKey(good, at); k != "" {
		b.WriteString(" (after " + k + ")")
	}
	return &Error{File: file, Line: at, Msg: b.String()}
}

func syntaxHint(msg, text string) string {
	indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	switch {
	case strings.Contains(indent, "\t") || strings.Contains(msg, "cannot start any token") && strings.Contains(text, "\t"):
		return "YAML indents with spaces, not tabs"
	case strings.Contains(msg, "end of stream") && strings.ContainsAny(text, `"'`):
		return "a quote opened here is not closed"
	case strings.Contains(msg, "did not find expected ',' or ']'"):
		return "a [ opened here is not closed"
	case strings.Contains(msg, "did not find expected ',' or '}'"):
		return "a { opened here is not closed"
	case strings.Contains(msg, "did not find expected key"),
		strings.Contains(msg, "expected '-' indicator"),
		strings.Contains(msg, "block sequence entries are not allowed"),
		strings.Contains(msg, "did not find expected node content"):
		return "check its indentation against the lines above"
	}
	return ""
}

// parseErr is the parser's message for data, without its line, or "".
func parseErr(data string) string {
	dec := yaml.NewDecoder(strings.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			m := err.Error()
			if s := yamlLine.FindStringSubmatch(m); s != nil {
				return s[2]
			}
			return strings.TrimPrefix(m, "yaml: ")
		}
	}
}

// firstFailing is the 1-based line that ends the shortest prefix of
// lines failing with msg, or 0. from is the parser's line, that of the
// construct holding the mistake, so the mistake is not before it.
func firstFailing(lines []string, msg string, from int) (at int) {
	defer func() {
		if recover() != nil {
			at = 0
		}
	}()
	fails := func(k int) bool { return parseErr(strings.Join(lines[:k], "")) == msg }
	lo := max(from-1, 1)
	if len(lines)-lo > linearLines {
		// The shortest failing prefix is in (lo-1, hi].
		hi := len(lines)
		if !fails(hi) {
			return 0
		}
		for lo < hi {
			mid := lo + (hi-lo)/2
			if fails(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return hi
	}
	for k := lo; k <= len(lines); k++ {
		if fails(k) {
			return k
		}
	}
	return 0
}

// lastParsing is the tree of the longest prefix of lines, at most n
// long, that parses; nil if none of the last few does.
func lastParsing(lines []string, n int) (root *yaml.Node) {
	defer func() {
		if recover() != nil {
			root = nil
		}
	}()
	for k := n; k > 0 && k > n-50; k-- {
		var doc yaml.Node
		if err := yaml.NewDecoder(bytes.NewReader([]byte(strings.Join(lines[:k], "")))).Decode(&doc); err == nil {
			if len(doc.Content) > 0 {
				return doc.Content[0]
			}
			return nil
		}
	}
	return nil
}

// lastKey is the path of the last mapping key on a line before line in
// root, the deepest when several share it.
func lastKey(root *yaml.Node, line int) string {
	best, bestLine := "", 0
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := keyPath(path, k.Value)
				if k.Line < line && k.Line >= bestLine {
					best, bestLine = p, k.Line
				}
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				walk(e, indexPath(path, i))
			}
		}
	}
	if root != nil {
		walk(root, "")
	}
	return best
}

// openScalar is the line of the plain text that the prefix root ends
// with, when it is a block mapping's value on a line of its own, before
// line, as "key value" without its colon is; 0 otherwise.
func openScalar(root *yaml.Node, line int) int {
	n, keyLine := root, 0
	for n != nil {
		if n.Style&yaml.FlowStyle != 0 {
			return 0
		}
		switch n.Kind {
		case yaml.MappingNode:
			if len(n.Content) < 2 {
				return 0
			}
			keyLine = n.Content[len(n.Content)-2].Line
			n = n.Content[len(n.Content)-1]
		case yaml.SequenceNode:
			if len(n.Content) == 0 {
				return 0
			}
			keyLine = 0
			n = n.Content[len(n.Content)-1]
		case yaml.ScalarNode:
			if n.Style == 0 && n.Line < line && keyLine != 0 && n.Line != keyLine {
				return n.Line
			}
			return 0
		default:
			return 0
		}
	}
	return 0
}
