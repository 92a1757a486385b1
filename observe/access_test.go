package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gateway/internal/routes"
)

// slogLine is what slog.JSONHandler writes for l at t: the reference
// that writeAccess must match byte for byte.
func slogLine(t *testing.T, at time.Time, l *accessLine) string {
	t.Helper()
	var buf bytes.Buffer
	r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
	opt := func(k, v string) {
		if v != "" {
			r.AddAttrs(slog.String(k, v))
		}
	}
	r.AddAttrs(slog.String("request_id", l.id))
	opt("client", l.client)
	opt("method", l.method)
	opt("host", l.host)
	opt("path", l.path)
	opt("proto", l.proto)
	opt("route", l.route)
	r.AddAttrs(slog.Int("status", l.status), slog.Int64("bytes", l.bytes),
		slog.Float64("duration_ms", float64(l.duration.Microseconds())/1000))
	opt("cache", l.cache)
	opt("encoding", l.encoding)
	if l.hasUpstream {
		opt("upstream", l.upstream)
		opt("target", l.target)
		r.AddAttrs(slog.Float64("upstream_ms", float64(l.upstreamDur.Microseconds())/1000))
	}
	if l.aborted {
		r.AddAttrs(slog.Bool("aborted", true))
	}
	if err := slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestAccessLineMatchesSlog: the access log's own encoder writes what
// slog.JSONHandler writes for the same record: times in and out of UTC,
// whole and fractional seconds, durations from zero to hours, fields
// that need escaping, with and without an upstream, aborted or not.
func TestAccessLineMatchesSlog(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	west := time.FixedZone("west", -7*3600)
	times := []time.Time{
		time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC),
		time.Date(2026, 11, 27, 1, 2, 3, 400000000, time.UTC),
		time.Date(2026, 11, 27, 1, 2, 3, 123456789, time.UTC),
		time.Date(2026, 11, 27, 1, 2, 3, 120, east),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, west),
		time.Date(2026, 11, 27, 1, 2, 4, 5, time.UTC),
	}
	durs := []time.Duration{0, 999 * time.Nanosecond, time.Microsecond, 71 * time.Microsecond, 1500 * time.Microsecond,
		time.Second, 12345678 * time.Microsecond, 3 * time.Hour, -time.Millisecond}
	lines := []accessLine{
		{id: "4f9e3acc", client: "127.0.0.1", method: "GET", host: "example.com", path: "/cacheable/1024",
			proto: "HTTP/1.1", route: "bench", status: 200, bytes: 1024, cache: "hit"},
		{id: `quote"back\slash`, client: "2001:db8::1", method: "POST", host: "h\u2028x", path: "/\x00\x1f\xff<>&",
			proto: "HTTP/2.0", route: "(none)", status: 499, bytes: 0, cache: "none", encoding: "gzip",
			upstream: "app", target: "http://10.0.0.1:8080", hasUpstream: true, aborted: true},
		{id: "x", route: "api", status: 502, upstream: "app", target: "http://t", hasUpstream: true},
	}
	h := newJSONHandler(nil)
	for _, at := range times {
		for _, d := range durs {
			for _, l := range lines {
				l.duration, l.upstreamDur = d, d/3
				var buf bytes.Buffer
				h.w = &buf
				if err := h.writeAccess(at, &l); err != nil {
					t.Fatal(err)
				}
				if want := slogLine(t, at, &l); buf.String() != want {
					t.Errorf("at %v, %v:\n got %s want %s", at, d, buf.String(), want)
				}
			}
		}
	}
}

// TestLineClockNewSecond: the cached second is replaced when the
// second or the zone changes.
func TestLineClockNewSecond(t *testing.T) {
	var c lineClock
	east := time.FixedZone("east", 3600)
	for _, at := range []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 1, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 1, east),
		time.Date(2026, 1, 1, 0, 0, 1, 2, east),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(c.append(nil, at)), at.Format(time.RFC3339Nano); got != want {
			t.Errorf("append(%v) = %s; want %s", at, got, want)
		}
	}
	if got := strings.Count(string(c.append(nil, time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC))), "T"); got != 1 {
		t.Errorf("a whole second: %d T; want 1", got)
	}
}

// FuzzAccessLineMatchesSlog: for any field values, durations and
// times, the access log's encoder writes what slog.JSONHandler writes.
func FuzzAccessLineMatchesSlog(f *testing.F) {
	f.Add("id", "/p?q=1", "h\u2028\xff", int64(71000), int64(1764205323123456789), 200)
	f.Add(`"\`, "\x00", "", int64(0), int64(0), 499)
	f.Add("x", "/", "example.com", int64(-5), int64(-62135596800000000), 100)
	f.Fuzz(func(t *testing.T, id, path, host string, durNs, unixNs int64, status int) {
		at := time.Unix(0, unixNs).In(time.FixedZone("z", int(unixNs%86400)))
		l := accessLine{id: id, client: "192.0.2.1", method: "GET", host: host, path: path, proto: "HTTP/1.1",
			route: "r", status: status, bytes: durNs, duration: time.Duration(durNs), cache: "hit", encoding: host,
			upstream: path, target: id, upstreamDur: time.Duration(durNs / 3), hasUpstream: status%2 == 0, aborted: status%3 == 0}
		var buf bytes.Buffer
		h := newJSONHandler(&buf)
		if err := h.writeAccess(at, &l); err != nil {
			t.Fatal(err)
		}
		if want := slogLine(t, at, &l); buf.String() != want {
			t.Errorf("got  %s want %s", buf.String(), want)
		}
	})
}

// TestAccessJSONNoEmptyMembers: a request that no route took, that no
// upstream answered and the cache never saw, sent without a Host, has a
// JSON line with no empty member, in both encoders (the access log's
// own, and slog's through a handler with attributes).
func TestAccessJSONNoEmptyMembers(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	for _, name := range []string{"observe", "slog"} {
		var buf bytes.Buffer
		var lh slog.Handler = NewHandler("json", &buf)
		if name == "slog" {
			lh = lh.WithAttrs([]slog.Attr{slog.String("via", "slog")})
		}
		h := Wrap(next, Options{Log: lh, Routes: routes.New([]string{"api"}, false)})
		req := httptest.NewRequest("GET", "/nowhere", nil)
		req.Host = ""
		h.ServeHTTP(httptest.NewRecorder(), req)
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("%s: %q: %v", name, buf.String(), err)
		}
		for k, v := range m {
			if v == "" {
				t.Errorf("%s: %s is empty in %s", name, k, buf.String())
			}
		}
		for _, k := range []string{"host", "encoding", "upstream", "target", "upstream_ms", "aborted"} {
			if _, ok := m[k]; ok {
				t.Errorf("%s: %s present in %s", name, k, buf.String())
			}
		}
		for _, k := range []string{"request_id", "client", "method", "path", "proto", "route", "status", "bytes", "duration_ms", "cache"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: %s missing from %s", name, k, buf.String())
			}
		}
	}
}
