package compress

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func mustNew(t testing.TB, o Options) *Compressor {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewDefaults(t *testing.T) {
	c := mustNew(t, Options{})
	if !reflect.DeepEqual(c.Codings(), []string{Brotli, Zstd, Gzip}) {
		t.Errorf("codings %q; want br, zstd, gzip", c.Codings())
	}
	if c.stream != Fastest || c.cached != Default || c.minSize != DefaultMinSize {
		t.Errorf("stream %v cached %v min %d; want fastest, default, %d", c.stream, c.cached, c.minSize, DefaultMinSize)
	}
	if len(c.types) != len(defaultTypes) {
		t.Errorf("%d types; want the %d defaults", len(c.types), len(defaultTypes))
	}
	c = mustNew(t, Options{Codings: []string{"GZIP", "Br"}, StreamLevel: Best, CachedLevel: Fastest, MinSize: 1, Types: []string{"Text/HTML"}})
	if !reflect.DeepEqual(c.Codings(), []string{Gzip, Brotli}) || c.stream != Best || c.cached != Fastest || c.minSize != 1 {
		t.Errorf("got %q %v %v %d", c.Codings(), c.stream, c.cached, c.minSize)
	}
	if !c.typeAllowed("text/html; charset=utf-8") || c.typeAllowed("text/plain") {
		t.Errorf("Types: [Text/HTML] should allow text/html only")
	}
	// DefaultTypes is a copy.
	d := DefaultTypes()
	d[0] = "changed"
	if defaultTypes[0] == "changed" {
		t.Errorf("DefaultTypes shares the package's slice")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want []OptionError
	}{
		{"unknown coding", Options{Codings: []string{"gzip", "deflate"}},
			[]OptionError{{"Codings", 1, `unknown coding "deflate" (want br, zstd or gzip)`}}},
		{"identity", Options{Codings: []string{"identity"}},
			[]OptionError{{"Codings", 0, "identity is always available and is not offered (want br, zstd or gzip)"}}},
		{"duplicate coding", Options{Codings: []string{"br", "gzip", "BR"}},
			[]OptionError{{"Codings", 2, `duplicate coding "BR"`}}},
		{"x-gzip", Options{Codings: []string{"x-gzip"}},
			[]OptionError{{"Codings", 0, `unknown coding "x-gzip" (want br, zstd or gzip)`}}},
		{"levels", Options{StreamLevel: -1, CachedLevel: Best + 1},
			[]OptionError{
				{"StreamLevel", -1, "invalid level -1 (want Fastest, Default or Best)"},
				{"CachedLevel", -1, "invalid level 4 (want Fastest, Default or Best)"},
			}},
		{"negative min size", Options{MinSize: -1}, []OptionError{{"MinSize", -1, "-1 must not be negative"}}},
		{"star star", Options{Types: []string{"text/*", "*/*"}},
			[]OptionError{{"Types", 1, `type "*/*" would compress any type, images and archives too; list the types instead`}}},
		{"bad types", Options{Types: []string{"text", "text/", "/json", "text/ html", "text/html; charset=utf-8", "*", "application/*json", "application/*+", "a*/b", "text/h*"}},
			[]OptionError{
				{"Types", 0, `invalid type "text" (want type/subtype, type/* or type/*+suffix, e.g. application/json, text/*, application/*+json)`},
				{"Types", 1, `invalid type "text/"`},
				{"Types", 2, `invalid type "/json"`},
				{"Types", 3, `invalid type "text/ html"`},
				{"Types", 4, `invalid type "text/html; charset=utf-8"`},
				{"Types", 5, `type "*" would compress any type`},
				{"Types", 6, `invalid type "application/*json"`},
				{"Types", 7, `invalid type "application/*+"`},
				{"Types", 8, `invalid type "a*/b"`},
				{"Types", 9, `invalid type "text/h*"`},
			}},
		{"duplicate type", Options{Types: []string{"text/*", "application/json", "Text/*"}},
			[]OptionError{{"Types", 2, `duplicate type "Text/*"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.o)
			if err == nil || c != nil {
				t.Fatalf("New = %v, %v; want an error", c, err)
			}
			var got []*OptionError
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var oe *OptionError
				if !errors.As(e, &oe) {
					t.Fatalf("error %v is not an *OptionError", e)
				}
				got = append(got, oe)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors:\n%v\nwant %d", len(got), err, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Field != w.Field || g.Index != w.Index || !strings.HasPrefix(g.Msg, w.Msg) {
					t.Errorf("error %d: got %s %d %q; want %s %d %q...", i, g.Field, g.Index, g.Msg, w.Field, w.Index, w.Msg)
				}
				if !strings.HasPrefix(g.Error(), "compress: "+w.Field) {
					t.Errorf("Error() = %q", g.Error())
				}
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for s, want := range map[string]Level{"fastest": Fastest, "default": Default, "best": Best} {
		if got, err := ParseLevel(s); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got, _ := ParseLevel(want.String()); got != want {
			t.Errorf("ParseLevel(%v.String()) = %v", want, got)
		}
	}
	for _, s := range []string{"", "Fastest", "fast", "9", "Level(0)"} {
		if _, err := ParseLevel(s); err == nil || !strings.Contains(err.Error(), "want fastest, default or best") {
			t.Errorf("ParseLevel(%q) err = %v; want one listing the levels", s, err)
		}
	}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestEligible(t *testing.T) {
	c := mustNew(t, Options{})
	json := func(kv ...string) http.Header {
		return hdr(append([]string{"Content-Type", "application/json"}, kv...)...)
	}
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		method string
		want   bool
	}{
		{"json 200", 200, json(), "GET", true},
		{"HEAD like GET", 200, json(), "HEAD", true},
		{"POST", 201, json(), "POST", true},
		{"CONNECT", 200, json(), "CONNECT", false},
		{"202", 202, json(), "GET", true},
		{"203", 203, json(), "GET", true},
		{"404 page", 404, hdr("Content-Type", "text/html"), "GET", true},
		{"500", 500, json(), "GET", true},
		{"503", 503, json(), "GET", true},
		{"100", 100, json(), "GET", false},
		{"101", 101, json(), "GET", false},
		{"103", 103, json(), "GET", false},
		{"204", 204, json(), "GET", false},
		{"205", 205, json(), "GET", false},
		{"206", 206, json(), "GET", false},
		{"207", 207, json(), "GET", false},
		{"301", 301, hdr("Content-Type", "text/html"), "GET", false},
		{"304", 304, json(), "GET", false},
		{"600", 600, json(), "GET", false},
		{"encoded", 200, json("Content-Encoding", "gzip"), "GET", false},
		{"encoded unknown", 200, json("Content-Encoding", "deflate"), "GET", false},
		{"identity", 200, json("Content-Encoding", "identity"), "GET", true},
		{"identity list", 200, json("Content-Encoding", "Identity, "), "GET", true},
		{"no-transform", 200, json("Cache-Control", "public, No-Transform"), "GET", false},
		{"no-transform second line", 200, json("Cache-Control", "max-age=60", "Cache-Control", "no-transform"), "GET", false},
		{"no-transformation is another directive", 200, json("Cache-Control", "no-transformation"), "GET", true},
		{"content-range", 200, json("Content-Range", "bytes 0-9/100"), "GET", false},
		{"no type", 200, hdr(), "GET", false},
		{"empty type", 200, hdr("Content-Type", ""), "GET", false},
		{"type params", 200, hdr("Content-Type", "Text/HTML ; charset=utf-8"), "GET", true},
		{"type not listed", 200, hdr("Content-Type", "image/png"), "GET", false},
		{"suffix json", 200, hdr("Content-Type", "application/problem+json"), "GET", true},
		{"suffix xml", 200, hdr("Content-Type", "application/atom+xml; charset=utf-8"), "GET", true},
		{"bare suffix", 200, hdr("Content-Type", "application/+json"), "GET", false},
		{"suffix other type", 200, hdr("Content-Type", "image/foo+json"), "GET", false},
		{"svg", 200, hdr("Content-Type", "image/svg+xml"), "GET", true},
		{"wasm", 200, hdr("Content-Type", "application/wasm"), "GET", true},
		{"font", 200, hdr("Content-Type", "font/ttf"), "GET", true},
		{"woff2 compressed already", 200, hdr("Content-Type", "font/woff2"), "GET", false},
		{"sse", 200, hdr("Content-Type", "text/event-stream"), "GET", true},
		{"octet-stream", 200, hdr("Content-Type", "application/octet-stream"), "GET", false},
		{"length at min", 200, json("Content-Length", "1024"), "GET", true},
		{"length below min", 200, json("Content-Length", "1023"), "GET", false},
		{"length zero", 200, json("Content-Length", "0"), "GET", false},
		{"length malformed", 200, json("Content-Length", "x"), "GET", true},
		{"length unknown", 200, json(), "GET", true},
	} {
		if got := c.Eligible(tc.status, tc.h, tc.method); got != tc.want {
			t.Errorf("%s: Eligible(%d, %v, %s) = %v; want %v", tc.name, tc.status, tc.h, tc.method, got, tc.want)
		}
	}
	// MinSize 1: any size but a known-empty body.
	one := mustNew(t, Options{MinSize: 1})
	if !one.Eligible(200, json("Content-Length", "1"), "GET") || one.Eligible(200, json("Content-Length", "0"), "GET") {
		t.Errorf("MinSize 1: want 1 byte eligible and 0 bytes not")
	}
}

func TestChoose(t *testing.T) {
	def := mustNew(t, Options{})
	gzipFirst := mustNew(t, Options{Codings: []string{Gzip, Brotli}})
	for _, tc := range []struct {
		c    *Compressor
		ae   []string // nil: no header
		want string
	}{
		{def, nil, ""},
		{def, []string{""}, ""},
		{def, []string{"identity"}, ""},
		{def, []string{"gzip, deflate, br, zstd"}, Brotli},
		{def, []string{"gzip"}, Gzip},
		{def, []string{"gzip", "zstd"}, Zstd},
		{def, []string{"gzip;q=1, br;q=0.5"}, Gzip},
		{def, []string{"*"}, Brotli},
		{def, []string{"gzip;q=0"}, ""},
		{def, []string{"identity;q=0"}, ""},
		{def, []string{"identity;q=0, gzip"}, Gzip},
		{def, []string{"*;q=0"}, ""},
		{def, []string{"gzip;q=0.5, identity"}, ""},
		{def, []string{"gzip;q=nonsense"}, ""},
		{gzipFirst, []string{"br, gzip"}, Gzip},
		{gzipFirst, []string{"zstd"}, ""},
		{gzipFirst, []string{"zstd, br;q=0.1"}, Brotli},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range tc.ae {
			r.Header.Add("Accept-Encoding", v)
		}
		if got := tc.c.Choose(r); got != tc.want {
			t.Errorf("codings %q, Accept-Encoding %q: Choose = %q; want %q", tc.c.codings, tc.ae, got, tc.want)
		}
	}
}

func TestETag(t *testing.T) {
	for _, tc := range []struct{ etag, coding, want string }{
		{`"abc"`, Gzip, `"abc-gzip"`},
		{`"abc"`, Brotli, `"abc-br"`},
		{`"abc"`, Zstd, `"abc-zstd"`},
		{`""`, Gzip, `"-gzip"`},
		{`W/"abc"`, Gzip, `W/"abc"`},
		{`"abc"`, "", `"abc"`},
		{`"abc"`, Identity, `"abc"`},
		{"", Gzip, ""},
		{"abc", Gzip, "abc"},
		{`"abc`, Gzip, `"abc`},
		{`"a"b"`, Gzip, `"a"b"`},
		{`"a b"`, Gzip, `"a b"`},
		{`"`, Gzip, `"`},
	} {
		if got := ETag(tc.etag, tc.coding); got != tc.want {
			t.Errorf("ETag(%q, %q) = %q; want %q", tc.etag, tc.coding, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{`"abc"`, `W/"abc"`}, {`W/"abc"`, `W/"abc"`}, {"", ""}, {"abc", "abc"},
	} {
		if got := weakETag(tc.in); got != tc.want {
			t.Errorf("weakETag(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzETag(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, "", "abc", `"a,b"`, `"x-gzip"`} {
		f.Add(s, "gzip")
	}
	f.Fuzz(func(t *testing.T, etag, coding string) {
		got := ETag(etag, coding)
		if coding == "" || coding == Identity || !isStrongETag(etag) {
			if got != etag {
				t.Fatalf("ETag(%q, %q) = %q; want it unchanged", etag, coding, got)
			}
			return
		}
		// A strong validator stays strong and distinct per coding, and
		// the original can be recovered from it.
		if !strings.HasPrefix(got, `"`) || !strings.HasSuffix(got, "-"+coding+`"`) || got == etag {
			t.Fatalf("ETag(%q, %q) = %q", etag, coding, got)
		}
		if back := strings.TrimSuffix(got[:len(got)-1], "-"+coding) + `"`; back != etag {
			t.Fatalf("ETag(%q, %q) = %q does not strip back (%q)", etag, coding, got, back)
		}
		if canonicalCoding(coding) != "" && !isStrongETag(got) {
			t.Fatalf("ETag(%q, %q) = %q is not a strong entity-tag", etag, coding, got)
		}
	})
}

func TestAddVary(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{"Accept-Encoding"}},
		{[]string{""}, []string{"Accept-Encoding"}},
		{[]string{"Origin"}, []string{"Origin, Accept-Encoding"}},
		{[]string{"Origin", "Cookie"}, []string{"Origin", "Cookie, Accept-Encoding"}},
		{[]string{"Origin", ""}, []string{"Origin", "Accept-Encoding"}},
		{[]string{"accept-encoding"}, []string{"accept-encoding"}},
		{[]string{"Origin,Accept-Encoding"}, []string{"Origin,Accept-Encoding"}},
		{[]string{"Origin", " ACCEPT-ENCODING "}, []string{"Origin", " ACCEPT-ENCODING "}},
		{[]string{"*"}, []string{"*"}},
		{[]string{"Origin, *"}, []string{"Origin, *"}},
	} {
		h := http.Header{}
		var orig []string
		if tc.in != nil {
			orig = append([]string(nil), tc.in...)
			h["Vary"] = orig
		}
		addVary(h)
		if !reflect.DeepEqual(h["Vary"], tc.want) {
			t.Errorf("Vary %q: got %q; want %q", tc.in, h["Vary"], tc.want)
		}
		if !reflect.DeepEqual(orig, tc.in) {
			t.Errorf("Vary %q: the original slice was modified to %q", tc.in, orig)
		}
	}
}

func TestContentCoding(t *testing.T) {
	for _, tc := range []struct {
		in     []string
		coding string
		ok     bool
	}{
		{nil, "", true},
		{[]string{""}, "", true},
		{[]string{"identity"}, "", true},
		{[]string{"GZIP"}, Gzip, true},
		{[]string{"x-gzip"}, Gzip, true},
		{[]string{" br "}, Brotli, true},
		{[]string{"zstd, identity"}, Zstd, true},
		{[]string{"gzip, br"}, "?", false},
		{[]string{"gzip", "gzip"}, "?", false},
		{[]string{"deflate"}, "?", false},
	} {
		c, ok := contentCoding(http.Header{"Content-Encoding": tc.in})
		if c != tc.coding || ok != tc.ok {
			t.Errorf("Content-Encoding %q: got %q, %v; want %q, %v", tc.in, c, ok, tc.coding, tc.ok)
		}
	}
}

func TestEncodeStats(t *testing.T) {
	c := mustNew(t, Options{CachedLevel: Best})
	for _, coding := range codings {
		out, err := c.Encode([]byte("keep"), coding, json64k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, []byte("keep")) {
			t.Fatalf("%s: Encode did not append", coding)
		}
		checkDecodes(t, coding, out[4:], json64k)
		// Best level: the same as the Encoders' own output at Best.
		want, _ := NewEncoders().Encode(nil, coding, Best, json64k)
		if !bytes.Equal(out[4:], want) {
			t.Errorf("%s: Encode did not use CachedLevel Best", coding)
		}
		s := c.Stats()[coding]
		if s.Responses != 1 || s.BytesIn != uint64(len(json64k)) || s.BytesOut != uint64(len(out)-4) {
			t.Errorf("%s: stats %+v; want 1 response, %d in, %d out", coding, s, len(json64k), len(out)-4)
		}
	}
	if _, err := c.Encode(nil, "deflate", nil); !errors.Is(err, ErrUnknownCoding) {
		t.Errorf("Encode(deflate) err = %v; want ErrUnknownCoding", err)
	}
	if s := c.Stats(); len(s) != 4 || s[DecodedStats] != (CodingStats{}) {
		t.Errorf("stats %+v; want four keys, nothing decoded", s)
	}
}

// TestStats: an encoding is counted under its coding, with its bytes
// in and out, beside the codings not used and the decoded ones.
func TestStats(t *testing.T) {
	c := mustNew(t, Options{})
	if _, err := c.Encode(nil, Gzip, []byte("hello hello hello")); err != nil {
		t.Fatal(err)
	}
	got := c.Stats()
	if g := got[Gzip]; len(got) != 4 || g.Responses != 1 || g.BytesIn != 17 || g.BytesOut == 0 || got[Brotli].Responses != 0 {
		t.Errorf("got %+v", got)
	}
	if _, ok := got[DecodedStats]; !ok {
		t.Errorf("got %+v; want the decoded codings' counters too", got)
	}
}

// TestExpandINM: If-None-Match gets the origin's tag beside the variant
// of the coding the client will be sent, and only that one: the variant
// of another coding, or any variant for a client that gets identity,
// must not match.
func TestExpandINM(t *testing.T) {
	c := mustNew(t, Options{Codings: []string{Gzip, Brotli}})
	for _, tc := range []struct {
		in     []string
		chosen string
		want   string // "" : unchanged
	}{
		{[]string{`"v-gzip"`}, Gzip, `"v-gzip", "v"`},
		{[]string{`"v-br"`}, Brotli, `"v-br", "v"`},
		{[]string{`"v-gzip"`}, Brotli, ``}, // the client would now get br
		{[]string{`"v-gzip"`}, "", ``},     // the client would now get identity
		{[]string{`"v-gzip"`}, Identity, ``},
		{[]string{`"v-gzip", "v-br"`}, Brotli, `"v-gzip", "v-br", "v"`},
		{[]string{`W/"v-gzip"`}, Gzip, ``},
		{[]string{`"v"`}, Gzip, ``},
		{[]string{`*`}, Gzip, ``},
		{[]string{`"-gzip"`}, Gzip, ``},
		{[]string{`"v-gzip", "v"`}, Gzip, ``},
		{[]string{`"a,b-br"`, `W/"x", "c-br", "d-gzip"`}, Brotli, `"a,b-br", W/"x", "c-br", "d-gzip", "a,b", "c"`},
		{[]string{`"v-gzip" garbage "w-gzip"`}, Gzip, `"v-gzip" garbage "w-gzip", "v"`},
	} {
		got, ok := c.expandINM(tc.in, tc.chosen)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("If-None-Match %q for %q: got %q, %v; want %q", tc.in, tc.chosen, got, ok, tc.want)
		}
	}
}

// TestExpandIfMatch: If-Match gets the origin's tag beside a variant of
// any offered coding, since each stands for the same state.
func TestExpandIfMatch(t *testing.T) {
	c := mustNew(t, Options{Codings: []string{Gzip, Brotli}})
	for _, tc := range []struct {
		in   []string
		want string // "" : unchanged
	}{
		{[]string{`"v-gzip"`}, `"v-gzip", "v"`},
		{[]string{`"v-br"`}, `"v-br", "v"`},
		{[]string{`"v-zstd"`}, ``}, // zstd is not offered
		{[]string{`W/"v-gzip"`}, ``},
		{[]string{`"v"`}, ``},
		{[]string{`*`}, ``},
		{[]string{`"-gzip"`}, ``},
		{[]string{`"v-gzip", "v"`}, ``},
		{[]string{`"a,b-gzip"`, `W/"x", "c-br"`}, `"a,b-gzip", W/"x", "c-br", "a,b", "c"`},
		{[]string{`"v-gzip", "v-br"`}, `"v-gzip", "v-br", "v"`},
		{[]string{`"v-gzip" garbage "w-gzip"`}, `"v-gzip" garbage "w-gzip", "v"`},
	} {
		got, ok := c.expandIfMatch(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("If-Match %q: got %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestSetEncoding(t *testing.T) {
	h := hdr("Content-Type", "application/json", "Content-Length", "5000", "Etag", `"v"`, "Vary", "Origin",
		"Accept-Ranges", "bytes", "Content-Digest", "sha-256=:x:", "Repr-Digest", "sha-256=:x:", "Content-Md5", "x", "Digest", "x")
	SetEncoding(h, Zstd)
	want := hdr("Content-Type", "application/json", "Etag", `"v-zstd"`, "Vary", "Origin, Accept-Encoding", "Content-Encoding", "zstd")
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v; want %v", h, want)
	}
	h = hdr("Content-Type", "application/json", "Content-Length", "5000", "Etag", `"v"`)
	SetEncoding(h, "")
	if want := hdr("Content-Type", "application/json", "Content-Length", "5000", "Etag", `"v"`, "Vary", "Accept-Encoding"); !reflect.DeepEqual(h, want) {
		t.Errorf("identity: got %v; want %v", h, want)
	}
}
