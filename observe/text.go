package observe

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// textHandler writes the access log for a person at a terminal: one
// short line per request, its fields by position, none of them empty,
//
//	15:04:05.123 200 GET example.com /api/x 1.2ms cache=miss 512B upstream=app/127.0.0.1:3000
//
// the time of day (local, to the millisecond), status, method, host
// ("-" when the client sent none), path, duration, the cache's outcome
// unless the cache had no part (none), body bytes sent, the upstream and
// its target when one was contacted, proto=<protocol> unless it is
// HTTP/1.1 (proto=HTTP/2.0, proto=HTTP/3.0), job=<id> for a request that
// created or runs a job, and "aborted" for a response cut short. The
// request id, client, route, encoding and upstream time are in the JSON
// format only.
//
// Records other than the access log's own (through Handle, or a handler
// from WithAttrs or WithGroup) are written as slog.TextHandler writes
// them.
type textHandler struct {
	w     io.Writer
	mu    *sync.Mutex // nil when w serializes its own writes (Output)
	inner slog.Handler
}

var _ slog.Handler = (*textHandler)(nil)

func newTextHandler(w io.Writer) *textHandler {
	h := &textHandler{w: w, inner: slog.NewTextHandler(w, nil)}
	if _, ok := w.(*Output); !ok {
		h.mu = new(sync.Mutex)
	}
	return h
}

func (h *textHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *textHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.inner.WithAttrs(as) }

func (h *textHandler) WithGroup(name string) slog.Handler { return h.inner.WithGroup(name) }

// writeAccess writes l, ended at t, as one short line.
func (h *textHandler) writeAccess(t time.Time, l *accessLine) error {
	bp := jsonBufs.Get().(*[]byte)
	b := appendClock((*bp)[:0], t)
	b = strconv.AppendInt(append(b, ' '), int64(l.status), 10)
	b = appendField(append(b, ' '), l.method)
	b = appendField(append(b, ' '), l.host)
	b = appendField(append(b, ' '), l.path)
	b = appendShortDuration(append(b, ' '), l.duration)
	if l.cache != "" && l.cache != "none" {
		b = appendField(append(b, " cache="...), l.cache)
	}
	b = appendSize(append(b, ' '), l.bytes)
	if l.hasUpstream {
		b = appendField(append(b, " upstream="...), l.upstream)
		if target := trimScheme(l.target); target != "" {
			b = appendField(append(b, '/'), target)
		}
	}
	if l.proto != "" && l.proto != "HTTP/1.1" {
		// HTTP/1.1 is the usual case and goes unsaid; the others (HTTP/2,
		// HTTP/3, HTTP/1.0) are worth seeing at a glance.
		b = appendField(append(b, " proto="...), l.proto)
	}
	if l.job != "" {
		b = appendField(append(b, " job="...), l.job)
	}
	if l.aborted {
		b = append(b, " aborted"...)
	}
	b = append(b, '\n')
	return writeLine(h.mu, h.w, bp, b)
}

// appendClock appends t's time of day, "15:04:05.000".
func appendClock(b []byte, t time.Time) []byte {
	hh, mm, ss := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b,
		byte('0'+hh/10), byte('0'+hh%10), ':',
		byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// appendField appends v, or "-" when it is empty, with every byte that
// would split the line or the field (controls, space, DEL, and bytes
// outside ASCII) written as %XX, as in a URL.
func appendField(b []byte, v string) []byte {
	if v == "" {
		return append(b, '-')
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendShortDuration appends d as a person reads it: "850µs" below a
// millisecond, "1.2ms" below a second, "1.25s" beyond (truncated, not
// rounded).
func appendShortDuration(b []byte, d time.Duration) []byte {
	switch us := d.Microseconds(); {
	case us < 1000:
		return append(strconv.AppendInt(b, max(us, 0), 10), "µs"...)
	case us < 1e6:
		return append(appendFixed(b, us/100, 1), "ms"...)
	default:
		return append(appendFixed(b, us/1e4, 2), 's')
	}
}

// appendSize appends n bytes as "512B", "1.5KiB", "2.0MiB" or "1.1GiB"
// (one decimal, truncated).
func appendSize(b []byte, n int64) []byte {
	switch {
	case n < 1<<10:
		return append(strconv.AppendInt(b, n, 10), 'B')
	case n < 1<<20:
		return append(appendFixed(b, n*10>>10, 1), "KiB"...)
	case n < 1<<30:
		return append(appendFixed(b, n*10>>20, 1), "MiB"...)
	default:
		return append(appendFixed(b, n>>30*10+(n&(1<<30-1))*10>>30, 1), "GiB"...)
	}
}

// appendFixed appends v/10^decimals with that many decimals (v >= 0).
func appendFixed(b []byte, v int64, decimals int) []byte {
	p := int64(1)
	for range decimals {
		p *= 10
	}
	b = strconv.AppendInt(b, v/p, 10)
	b = append(b, '.')
	frac := v % p
	for p /= 10; p > 0; p /= 10 {
		b = append(b, byte('0'+frac/p))
		frac %= p
	}
	return b
}

// trimScheme drops "http://" or "https://" from a target's URL, to keep
// the line short: host and port name the target well enough.
func trimScheme(u string) string {
	for _, s := range [...]string{"http://", "https://"} {
		if len(u) > len(s) && u[:len(s)] == s {
			return u[len(s):]
		}
	}
	return u
}
