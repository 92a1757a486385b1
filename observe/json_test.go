package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// TestJSONHandlerMatchesSlog: the access log's JSON handler writes what
// slog.JSONHandler writes, byte for byte for plain records and as the
// same JSON value with groups, odd strings and every kind of value.
func TestJSONHandlerMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 26, 23, 17, 59, 669316246, time.UTC)
	odd := "quote\" back\\ nl\n cr\r tab\t nul\x00 bell\x07 del\x7f é 日本 \xff bad \u2028 ls </script>&"
	plain := []slog.Attr{
		slog.String("request_id", "d7df142c2bc9e281de87e40a8ad43810"),
		slog.String("path", "/api/items"),
		slog.Int("status", 200),
		slog.Int64("bytes", 2551),
		slog.Float64("duration_ms", 0.604),
		slog.Float64("big", 1e21),
		slog.Float64("small", 1.5e-7),
		slog.Bool("aborted", true),
		slog.Uint64("u", 1<<63),
		slog.Duration("d", 1500*time.Millisecond),
		slog.Time("t", at.Add(time.Hour)),
	}
	for _, tc := range []struct {
		name  string
		attrs []slog.Attr
		with  func(slog.Handler) slog.Handler
		exact bool
	}{
		{name: "access log line", attrs: plain, exact: true},
		{name: "odd strings", attrs: []slog.Attr{slog.String("path", odd), slog.String(odd, "key")}, exact: false},
		{name: "any, error, empty key", attrs: []slog.Attr{
			slog.Any("list", []int{1, 2}), slog.Any("err", errors.New("boom")), slog.String("", "dropped"),
			slog.Any("map", map[string]any{"a": 1}),
		}},
		{name: "groups", attrs: []slog.Attr{
			slog.Group("g", slog.Int("a", 1), slog.Group("h", slog.String("b", "x"))),
			slog.Group("empty"),
			slog.Group("", slog.Int("inlined", 2)),
		}},
		{name: "WithAttrs and WithGroup", attrs: plain[:3], with: func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("svc", "gw")}).WithGroup("req").WithAttrs([]slog.Attr{slog.Int("n", 1)}).WithGroup("inner")
		}},
		{name: "group with no record attrs", with: func(h slog.Handler) slog.Handler { return h.WithGroup("req") }, exact: true},
		{name: "nested empty groups", with: func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.Int("n", 1)}).WithGroup("a").WithAttrs([]slog.Attr{slog.Int("m", 2)}).WithGroup("b").WithGroup("c")
		}, exact: true},
		{name: "nested groups filled by the record", attrs: plain[:1], with: func(h slog.Handler) slog.Handler {
			return h.WithGroup("a").WithGroup("b")
		}, exact: true},
	} {
		var ours, theirs bytes.Buffer
		var h1, h2 slog.Handler = newJSONHandler(&ours), slog.NewJSONHandler(&theirs, nil)
		if tc.with != nil {
			h1, h2 = tc.with(h1), tc.with(h2)
		}
		r := slog.NewRecord(at, slog.LevelInfo, "request", 0)
		r.AddAttrs(tc.attrs...)
		if err := h1.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if err := h2.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if tc.exact && ours.String() != theirs.String() {
			t.Errorf("%s:\nours   %s\nslog's %s", tc.name, ours.String(), theirs.String())
		}
		var a, b any
		if err := json.Unmarshal(ours.Bytes(), &a); err != nil {
			t.Errorf("%s: ours is not JSON: %v\n%s", tc.name, err, ours.String())
			continue
		}
		if err := json.Unmarshal(theirs.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nours   %s\nslog's %s", tc.name, ours.String(), theirs.String())
		}
	}
}

// BenchmarkJSONHandler compares the access log's record with the two
// handlers.
func BenchmarkJSONHandler(b *testing.B) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("request_id", "d7df142c2bc9e281de87e40a8ad43810"), slog.String("client", "127.0.0.1"),
		slog.String("method", "GET"), slog.String("host", "127.0.0.1:46033"), slog.String("path", "/api/cached"),
		slog.String("proto", "HTTP/1.1"), slog.String("route", "api"), slog.Int("status", 200), slog.Int64("bytes", 2551),
		slog.Float64("duration_ms", 0.604), slog.String("cache", "miss"), slog.String("encoding", ""),
		slog.String("upstream", "sample"), slog.String("target", "http://127.0.0.1:38499"), slog.Float64("upstream_ms", 0.3),
	)
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{
		{"observe", NewHandler("json", NewOutput(discard{}, nil))},
		{"slog", slog.NewJSONHandler(NewOutput(discard{}, nil), nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
