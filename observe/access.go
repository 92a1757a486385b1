package observe

import (
	"strconv"
	"sync/atomic"
	"time"
)

// accessLine is one request's access log fields, in the order they are
// written.
type accessLine struct {
	id, client, method, host, path, proto, route string
	status                                       int
	bytes                                        int64
	duration                                     time.Duration
	cache, encoding                              string
	job                                          string // the job's id; "" for none
	upstream, target                             string
	upstreamDur                                  time.Duration
	hasUpstream, aborted                         bool
}

// writeAccess writes l at t as the JSON line jsonHandler would write
// for the equivalent slog record (the same members, order and number
// formats; TestAccessLineMatchesSlog holds them equal), but appends each
// member directly instead of going through slog.Attr values: this runs
// once per request, and on a cache hit it was the largest part of what
// the access log costs. A string member that is empty (encoding when the
// body is not encoded, host when the client sent none) is left out, as
// finish leaves its slog.Attr out.
func (h *jsonHandler) writeAccess(t time.Time, l *accessLine) error {
	bp := jsonBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = h.clock.append(b, t)
	b = member(b, `","level":"INFO","msg":"request","request_id":`, l.id)
	b = optMember(b, `,"client":`, l.client)
	b = optMember(b, `,"method":`, l.method)
	b = optMember(b, `,"host":`, l.host)
	b = optMember(b, `,"path":`, l.path)
	b = optMember(b, `,"proto":`, l.proto)
	b = optMember(b, `,"route":`, l.route)
	b = strconv.AppendInt(append(b, `,"status":`...), int64(l.status), 10)
	b = strconv.AppendInt(append(b, `,"bytes":`...), l.bytes, 10)
	b = appendMillisJSON(append(b, `,"duration_ms":`...), l.duration)
	b = optMember(b, `,"cache":`, l.cache)
	b = optMember(b, `,"encoding":`, l.encoding)
	b = optMember(b, `,"job":`, l.job)
	if l.hasUpstream {
		b = optMember(b, `,"upstream":`, l.upstream)
		b = optMember(b, `,"target":`, l.target)
		b = appendMillisJSON(append(b, `,"upstream_ms":`...), l.upstreamDur)
	}
	if l.aborted {
		b = append(b, `,"aborted":true`...)
	}
	b = append(b, '}', '\n')
	_, err := h.w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		jsonBufs.Put(bp)
	}
	return err
}

// member appends a JSON string member: key (with its separator and
// quotes) and v, escaped.
func member(b []byte, key, v string) []byte { return appendString(append(b, key...), v) }

// optMember is member, or nothing when v is empty.
func optMember(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return member(b, key, v)
}

// appendMillisJSON appends d in milliseconds to the microsecond, as
// appendFloat writes float64(d.Microseconds())/1000, from integers: the
// shortest decimal of a whole number of microseconds over 1000 is that
// number with its point moved, trailing zeros dropped.
func appendMillisJSON(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 || us >= 1e15 {
		return appendFloat(b, float64(us)/1000)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// lineClock formats times as RFC 3339 with nanoseconds (time.RFC3339Nano,
// as slog writes them), keeping the formatted date, time of day and zone
// of the current second: only the fraction changes between the lines of
// one second.
type lineClock struct {
	cur atomic.Pointer[clockSecond]
}

type clockSecond struct {
	unix   int64
	loc    *time.Location
	prefix string // "2006-01-02T15:04:05"
	zone   string // "Z" or "-07:00"
}

func (c *lineClock) append(b []byte, t time.Time) []byte {
	s := c.cur.Load()
	if s == nil || s.unix != t.Unix() || s.loc != t.Location() {
		full := t.Truncate(time.Second).Format(time.RFC3339)
		if len(full) < 20 || full[10] != 'T' {
			// A year beyond 9999 or before 0: no fixed layout to reuse.
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		s = &clockSecond{unix: t.Unix(), loc: t.Location(), prefix: full[:19], zone: full[19:]}
		c.cur.Store(s)
	}
	b = append(b, s.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, s.zone...)
}
