package observe

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonHandler writes records as slog.JSONHandler does (time, level,
// msg, then the attributes, one object per line), at a third of its
// cost: it appends each kind of value directly instead of going through
// slog's generic attribute machinery, which matters at one line per
// request. Attributes of kind Any are marshalled with encoding/json.
type jsonHandler struct {
	w      io.Writer
	mu     *sync.Mutex // nil when w serializes its own writes (Output)
	prefix []byte      // attributes from WithAttrs, encoded
	groups int         // groups opened by WithGroup, closed after each record
	open   bool        // prefix ends with a group's '{' and no member yet
	// empty groups at the end of prefix, dropped (as slog does) when
	// the record adds nothing to them: their count, and where the
	// first one starts in prefix.
	emptyGroups, emptyFrom int
	clock                  *lineClock // for writeAccess
}

var _ slog.Handler = (*jsonHandler)(nil)

func newJSONHandler(w io.Writer) *jsonHandler {
	h := &jsonHandler{w: w, clock: new(lineClock)}
	if _, ok := w.(*Output); !ok {
		h.mu = new(sync.Mutex)
	}
	return h
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *jsonHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.prefix = append([]byte(nil), h.prefix...)
	for _, a := range as {
		var wrote bool
		h2.prefix, wrote = appendAttr(h2.prefix, a, h2.open)
		if wrote {
			h2.open = false
			h2.emptyGroups = 0
		}
	}
	return &h2
}

func (h *jsonHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	if h2.emptyGroups == 0 {
		h2.emptyFrom = len(h.prefix)
	}
	h2.emptyGroups++
	h2.prefix = append(appendKey(append([]byte(nil), h.prefix...), name, h.open), '{')
	h2.groups++
	h2.open = true
	return &h2
}

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonHandler) Handle(_ context.Context, r slog.Record) error {
	bp, b, base := h.start(r.Time, r.Level, r.Message)
	first := h.open
	r.Attrs(func(a slog.Attr) bool {
		var wrote bool
		b, wrote = appendAttr(b, a, first)
		first = first && !wrote
		return true
	})
	return h.end(bp, b, base, first)
}

// start begins a line in a pooled buffer, up to the end of the
// attributes from WithAttrs; base is where those begin.
func (h *jsonHandler) start(t time.Time, l slog.Level, msg string) (bp *[]byte, b []byte, base int) {
	bp = jsonBufs.Get().(*[]byte)
	b = append((*bp)[:0], `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, l.String()...)
	b = append(b, `","msg":`...)
	b = appendString(b, msg)
	base = len(b)
	return bp, append(b, h.prefix...), base
}

// end closes the groups, drops those left empty (first: the record
// added nothing), writes the line and returns the buffer to the pool.
func (h *jsonHandler) end(bp *[]byte, b []byte, base int, first bool) error {
	groups := h.groups
	if first && h.emptyGroups > 0 {
		b = b[:base+h.emptyFrom]
		groups -= h.emptyGroups
	}
	for range groups {
		b = append(b, '}')
	}
	b = append(b, '}', '\n')
	return writeLine(h.mu, h.w, bp, b)
}

// appendKey appends the member name k, after a comma unless first.
func appendKey(b []byte, k string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = appendString(b, k)
	return append(b, ':')
}

// appendAttr appends a as an object member, after a comma unless
// first, and reports whether it wrote anything (as slog.JSONHandler,
// it drops attributes without a key and empty groups).
func appendAttr(b []byte, a slog.Attr, first bool) ([]byte, bool) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		as := v.Group()
		if len(as) == 0 {
			return b, false
		}
		if a.Key == "" { // inlined into the enclosing object
			wrote := false
			for _, ga := range as {
				var w bool
				b, w = appendAttr(b, ga, first && !wrote)
				wrote = wrote || w
			}
			return b, wrote
		}
		b = append(appendKey(b, a.Key, first), '{')
		inner := true
		for _, ga := range as {
			var w bool
			b, w = appendAttr(b, ga, inner)
			inner = inner && !w
		}
		return append(b, '}'), true
	}
	if a.Key == "" && v.Kind() == slog.KindAny && v.Any() == nil {
		return b, false // slog ignores the zero Attr
	}
	b = appendKey(b, a.Key, first)
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindFloat64:
		return appendFloat(b, v.Float64()), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), true
	}
	x := v.Any()
	if err, ok := x.(error); ok {
		return appendString(b, err.Error()), true
	}
	j, err := json.Marshal(x)
	if err != nil {
		return appendString(b, "!ERROR:"+err.Error()), true
	}
	return append(b, j...), true
}

// appendFloat formats f as encoding/json does, which slog uses: plain
// decimals from 1e-6 to 1e21, exponents beyond, without a leading zero
// in the exponent. NaN and infinities, which JSON lacks, become
// strings.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendString(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028 and U+2029 escaped as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeLine writes one finished log line b, under mu unless it is nil
// (w then serializes its own writes), and returns b's buffer, taken
// from jsonBufs, unless it grew past what is worth keeping.
func writeLine(mu *sync.Mutex, w io.Writer, bp *[]byte, b []byte) error {
	var err error
	if mu != nil {
		mu.Lock()
		_, err = w.Write(b)
		mu.Unlock()
	} else {
		_, err = w.Write(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b
		jsonBufs.Put(bp)
	}
	return err
}
