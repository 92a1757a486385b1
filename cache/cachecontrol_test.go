package cache

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// dirs returns the Directives of an empty header changed by set, so each
// table row states only what differs from "nothing present".
func dirs(set func(*Directives)) Directives {
	d := Directives{
		MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1,
		StaleWhileRevalidate: -1, StaleIfError: -1,
	}
	if set != nil {
		set(&d)
	}
	return d
}

type ccCase struct {
	name  string
	lines []string // Cache-Control field lines; one line for most cases
	want  Directives
}

var ccCases = []ccCase{
	// Empty and garbage input.
	{"no header", nil, dirs(nil)},
	{"empty", []string{""}, dirs(nil)},
	{"only commas and OWS", []string{" , ,\t,, "}, dirs(nil)},
	{"garbage", []string{"@@@ ;;; ==="}, dirs(nil)},
	{"non-ASCII", []string{"\xff\xfe, max-\u017fale=5"}, dirs(nil)},
	{"unknown extension ignored", []string{"foo, bar=baz, qux=\"a, b\""}, dirs(nil)},
	{"leading equals", []string{"=5, public"}, dirs(func(d *Directives) { d.Public = true })},

	// Every directive.
	{"max-age", []string{"max-age=3600"}, dirs(func(d *Directives) { d.MaxAge = 3600 })},
	{"s-maxage", []string{"s-maxage=60"}, dirs(func(d *Directives) { d.SMaxAge = 60 })},
	{"max-stale value", []string{"max-stale=30"}, dirs(func(d *Directives) { d.MaxStale = 30 })},
	{"max-stale bare", []string{"max-stale"}, dirs(func(d *Directives) { d.MaxStaleAny = true })},
	{"min-fresh", []string{"min-fresh=10"}, dirs(func(d *Directives) { d.MinFresh = 10 })},
	{"stale-while-revalidate", []string{"stale-while-revalidate=20"}, dirs(func(d *Directives) { d.StaleWhileRevalidate = 20 })},
	{"stale-if-error", []string{"stale-if-error=86400"}, dirs(func(d *Directives) { d.StaleIfError = 86400 })},
	{"no-cache bare", []string{"no-cache"}, dirs(func(d *Directives) { d.NoCache = true })},
	{"private bare", []string{"private"}, dirs(func(d *Directives) { d.Private = true })},
	{"no-store", []string{"no-store"}, dirs(func(d *Directives) { d.NoStore = true })},
	{"no-transform", []string{"no-transform"}, dirs(func(d *Directives) { d.NoTransform = true })},
	{"only-if-cached", []string{"only-if-cached"}, dirs(func(d *Directives) { d.OnlyIfCached = true })},
	{"public", []string{"public"}, dirs(func(d *Directives) { d.Public = true })},
	{"must-revalidate", []string{"must-revalidate"}, dirs(func(d *Directives) { d.MustRevalidate = true })},
	{"proxy-revalidate", []string{"proxy-revalidate"}, dirs(func(d *Directives) { d.ProxyRevalidate = true })},
	{"must-understand", []string{"must-understand"}, dirs(func(d *Directives) { d.MustUnderstand = true })},
	{"immutable", []string{"immutable"}, dirs(func(d *Directives) { d.Immutable = true })},
	{"boolean ignores its argument", []string{"no-store=1, public=\"x\""}, dirs(func(d *Directives) { d.NoStore, d.Public = true, true })},
	{"boolean with junk still set", []string{"no-store junk"}, dirs(func(d *Directives) { d.NoStore = true })},
	{"common response", []string{"public, max-age=3600, s-maxage=600, stale-while-revalidate=30, stale-if-error=600, immutable"},
		dirs(func(d *Directives) {
			d.Public, d.Immutable = true, true
			d.MaxAge, d.SMaxAge, d.StaleWhileRevalidate, d.StaleIfError = 3600, 600, 30, 600
		})},

	// Case and whitespace.
	{"upper case", []string{"MAX-AGE=5, No-Store, PUBLIC"}, dirs(func(d *Directives) { d.MaxAge, d.NoStore, d.Public = 5, true, true })},
	{"OWS around = and commas", []string{" max-age \t=\t 5 ,\tpublic\t"}, dirs(func(d *Directives) { d.MaxAge, d.Public = 5, true })},
	{"empty elements", []string{", ,max-age=5,,"}, dirs(func(d *Directives) { d.MaxAge = 5 })},
	{"space instead of comma", []string{"public max-age=5"}, dirs(func(d *Directives) { d.Public = true })},

	// Quoted values.
	{"quoted delta", []string{`max-age="5"`}, dirs(func(d *Directives) { d.MaxAge = 5 })},
	{"quoted delta with escape", []string{`max-age="1\2"`}, dirs(func(d *Directives) { d.MaxAge = 12 })},
	{"quoted min-fresh", []string{`min-fresh="7"`}, dirs(func(d *Directives) { d.MinFresh = 7 })},
	{"quoted comma does not split", []string{`foo="a, no-store", public`}, dirs(func(d *Directives) { d.Public = true })},
	{"escaped quote in extension", []string{`foo="a\", no-store", public`}, dirs(func(d *Directives) { d.Public = true })},
	{"unterminated quote swallows rest", []string{`foo="a, no-store`}, dirs(nil)},
	{"junk with quoted comma", []string{`public "x, no-store", immutable`}, dirs(func(d *Directives) { d.Public, d.Immutable = true, true })},

	// Invalid delta-seconds: max-age and s-maxage become 0, others absent.
	{"max-age negative", []string{"max-age=-5"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age non-digit", []string{"max-age=5s"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age decimal", []string{"max-age=1.5"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age empty", []string{"max-age="}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age bare", []string{"max-age"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age quoted empty", []string{`max-age=""`}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age quoted space", []string{`max-age=" 5"`}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age unterminated", []string{`max-age="5`}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age junk after", []string{"max-age=5 6"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age plus sign", []string{"max-age=+5"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"s-maxage invalid", []string{"s-maxage=abc"}, dirs(func(d *Directives) { d.SMaxAge = 0 })},
	{"leading zeros fine", []string{"max-age=007"}, dirs(func(d *Directives) { d.MaxAge = 7 })},
	{"min-fresh invalid", []string{"min-fresh=-1"}, dirs(nil)},
	{"min-fresh bare", []string{"min-fresh"}, dirs(nil)},
	{"max-stale invalid", []string{"max-stale=x"}, dirs(nil)},
	{"max-stale empty", []string{"max-stale="}, dirs(nil)},
	{"max-stale bare with junk", []string{"max-stale junk"}, dirs(nil)},
	{"stale-while-revalidate invalid", []string{"stale-while-revalidate=1e3"}, dirs(nil)},
	{"stale-if-error invalid", []string{"stale-if-error="}, dirs(nil)},

	// Duplicates.
	{"max-age same twice", []string{"max-age=5, max-age=5"}, dirs(func(d *Directives) { d.MaxAge = 5 })},
	{"max-age different", []string{"max-age=5, max-age=6"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age conflict stays 0", []string{"max-age=5, max-age=6, max-age=5"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"max-age valid then invalid", []string{"max-age=5, max-age=x"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"s-maxage different", []string{"s-maxage=1, s-maxage=2"}, dirs(func(d *Directives) { d.SMaxAge = 0 })},
	{"s-maxage same quoted and not", []string{`s-maxage=9, s-maxage="9"`}, dirs(func(d *Directives) { d.SMaxAge = 9 })},
	{"min-fresh first wins", []string{"min-fresh=1, min-fresh=2"}, dirs(func(d *Directives) { d.MinFresh = 1 })},
	{"min-fresh first valid wins", []string{"min-fresh=x, min-fresh=2"}, dirs(func(d *Directives) { d.MinFresh = 2 })},
	{"stale-if-error first wins", []string{"stale-if-error=1, stale-if-error=2"}, dirs(func(d *Directives) { d.StaleIfError = 1 })},
	{"swr first wins", []string{"stale-while-revalidate=3, stale-while-revalidate=4"}, dirs(func(d *Directives) { d.StaleWhileRevalidate = 3 })},
	{"max-stale bare then value", []string{"max-stale, max-stale=5"}, dirs(func(d *Directives) { d.MaxStaleAny = true })},
	{"max-stale value then bare", []string{"max-stale=5, max-stale"}, dirs(func(d *Directives) { d.MaxStale = 5 })},
	{"max-stale invalid then bare", []string{"max-stale=x, max-stale"}, dirs(func(d *Directives) { d.MaxStaleAny = true })},
	{"flag twice", []string{"no-store, NO-STORE"}, dirs(func(d *Directives) { d.NoStore = true })},

	// Huge numbers clamp to 2^31.
	{"2^31-1 kept", []string{"max-age=2147483647"}, dirs(func(d *Directives) { d.MaxAge = 2147483647 })},
	{"2^31 kept", []string{"max-age=2147483648"}, dirs(func(d *Directives) { d.MaxAge = 2147483648 })},
	{"2^31+1 clamped", []string{"max-age=2147483649"}, dirs(func(d *Directives) { d.MaxAge = 2147483648 })},
	{"beyond int64 clamped", []string{"stale-if-error=" + strings.Repeat("9", 100)}, dirs(func(d *Directives) { d.StaleIfError = 2147483648 })},
	{"clamped duplicates agree", []string{"max-age=99999999999, max-age=88888888888"}, dirs(func(d *Directives) { d.MaxAge = 2147483648 })},
	{"huge then invalid digit", []string{"min-fresh=" + strings.Repeat("9", 30) + "x"}, dirs(nil)},

	// Field-name lists.
	{"no-cache list", []string{`no-cache="set-cookie, x-foo"`},
		dirs(func(d *Directives) { d.NoCache, d.NoCacheFields = true, []string{"Set-Cookie", "X-Foo"} })},
	{"private single", []string{`private="Set-Cookie"`},
		dirs(func(d *Directives) { d.Private, d.PrivateFields = true, []string{"Set-Cookie"} })},
	{"private unquoted token", []string{`private=set-cookie`},
		dirs(func(d *Directives) { d.Private, d.PrivateFields = true, []string{"Set-Cookie"} })},
	{"list OWS and empty items", []string{"no-cache=\" ,a ,\tb,, \""},
		dirs(func(d *Directives) { d.NoCache, d.NoCacheFields = true, []string{"A", "B"} })},
	{"list with escape", []string{`no-cache="x-\foo"`},
		dirs(func(d *Directives) { d.NoCache, d.NoCacheFields = true, []string{"X-Foo"} })},
	{"list deduplicated and merged", []string{`private="a, A", private="b, a"`},
		dirs(func(d *Directives) { d.Private, d.PrivateFields = true, []string{"A", "B"} })},
	{"empty list is bare", []string{`no-cache=""`}, dirs(func(d *Directives) { d.NoCache = true })},
	{"empty unquoted is bare", []string{`private=`}, dirs(func(d *Directives) { d.Private = true })},
	{"invalid name makes bare", []string{`no-cache="a b, c"`}, dirs(func(d *Directives) { d.NoCache = true })},
	{"unterminated list is bare", []string{`private="a, b`}, dirs(func(d *Directives) { d.Private = true })},
	{"bare then list", []string{`no-cache, no-cache="a"`}, dirs(func(d *Directives) { d.NoCache = true })},
	{"list then bare", []string{`private="a", private`}, dirs(func(d *Directives) { d.Private = true })},
	{"too many field names is bare", []string{`no-cache="` + manyNames(maxFieldNames+1) + `"`}, dirs(func(d *Directives) { d.NoCache = true })},
	{"field names at the cap", []string{`no-cache="` + manyNames(maxFieldNames) + `"`},
		dirs(func(d *Directives) { d.NoCache, d.NoCacheFields = true, manyCanonical(maxFieldNames) })},

	// Several field lines combine as one list.
	{"two lines", []string{"public", "max-age=5"}, dirs(func(d *Directives) { d.Public, d.MaxAge = true, 5 })},
	{"duplicate across lines", []string{"max-age=5", "max-age=6"}, dirs(func(d *Directives) { d.MaxAge = 0 })},
	{"unterminated quote stays in its line", []string{`foo="x`, "no-store"}, dirs(func(d *Directives) { d.NoStore = true })},
	{"lists merge across lines", []string{`private="a"`, `private="b"`},
		dirs(func(d *Directives) { d.Private, d.PrivateFields = true, []string{"A", "B"} })},

	// The directive cap.
	{"directive at the cap", []string{strings.Repeat("x, ", maxDirectives-1) + "no-store"}, dirs(func(d *Directives) { d.NoStore = true })},
	{"directive past the cap ignored", []string{strings.Repeat("x, ", maxDirectives) + "no-store"}, dirs(nil)},
	{"empty elements do not count", []string{strings.Repeat(", ", 1000) + "no-store"}, dirs(func(d *Directives) { d.NoStore = true })},
	{"cap shared across lines", []string{strings.Repeat("x,", maxDirectives), "no-store"}, dirs(nil)},
}

func manyNames(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = "x-" + strings.Repeat("a", i+1)
	}
	return strings.Join(names, ", ")
}

func manyCanonical(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = http.CanonicalHeaderKey("x-" + strings.Repeat("a", i+1))
	}
	return names
}

func TestParseCacheControl(t *testing.T) {
	for _, tc := range ccCases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tc.lines {
				h.Add("Cache-Control", l)
			}
			if got := ParseCacheControl(h); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseCacheControl(%q)\ngot  %+v;\nwant %+v", tc.lines, got, tc.want)
			}
			if len(tc.lines) == 1 {
				if got := ParseCacheControlValue(tc.lines[0]); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("ParseCacheControlValue(%q)\ngot  %+v;\nwant %+v", tc.lines[0], got, tc.want)
				}
			}
		})
	}
}

// TestParseCacheControlNilHeader checks that a request or response without
// headers at all reads as "nothing present".
func TestParseCacheControlNilHeader(t *testing.T) {
	if got, want := ParseCacheControl(nil), dirs(nil); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseCacheControl(nil) = %+v; want %+v", got, want)
	}
}

func TestParseCacheControlAllocs(t *testing.T) {
	// The common case runs on every cacheable response, so it must not
	// allocate; field lists may.
	h := http.Header{"Cache-Control": {"public, max-age=3600, stale-while-revalidate=60"}}
	allocs := testing.AllocsPerRun(100, func() { _ = ParseCacheControl(h) })
	if allocs != 0 {
		t.Errorf("ParseCacheControl allocs = %v; want 0", allocs)
	}
}

func BenchmarkParseCacheControl(b *testing.B) {
	for _, bb := range []struct{ name, v string }{
		{"common", "public, max-age=3600"},
		{"full", `private="Set-Cookie", no-cache, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=600, must-revalidate`},
		{"hostile", strings.Repeat("x=\"y\", ", 10000)},
	} {
		h := http.Header{"Cache-Control": {bb.v}}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ParseCacheControl(h)
			}
		})
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, tc := range ccCases {
		f.Add(strings.Join(tc.lines, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		// A newline separates field lines, so the fuzzer explores the
		// multi-line path too.
		h := http.Header{"Cache-Control": strings.Split(in, "\n")}
		got := ParseCacheControl(h)
		checkInvariants(t, in, got)
		if again := ParseCacheControl(h); !reflect.DeepEqual(got, again) {
			t.Errorf("ParseCacheControl(%q) not deterministic: got %+v; then %+v", in, got, again)
		}
		one := ParseCacheControlValue(in)
		checkInvariants(t, in, one)
		if again := ParseCacheControlValue(in); !reflect.DeepEqual(one, again) {
			t.Errorf("ParseCacheControlValue(%q) not deterministic: got %+v; then %+v", in, one, again)
		}
	})
}

func checkInvariants(t *testing.T, in string, d Directives) {
	t.Helper()
	for name, v := range map[string]int64{
		"MaxAge": d.MaxAge, "SMaxAge": d.SMaxAge, "MaxStale": d.MaxStale, "MinFresh": d.MinFresh,
		"StaleWhileRevalidate": d.StaleWhileRevalidate, "StaleIfError": d.StaleIfError,
	} {
		if v != -1 && (v < 0 || v > 2147483648) {
			t.Errorf("%q: %s = %d; want -1 or in [0, 2147483648]", in, name, v)
		}
	}
	if d.MaxStaleAny && d.MaxStale != -1 {
		t.Errorf("%q: MaxStaleAny with MaxStale = %d; want -1", in, d.MaxStale)
	}
	for name, fields := range map[string][]string{"NoCacheFields": d.NoCacheFields, "PrivateFields": d.PrivateFields} {
		if len(fields) > maxFieldNames {
			t.Errorf("%q: len(%s) = %d; want <= %d", in, name, len(fields), maxFieldNames)
		}
		for _, f := range fields {
			if f == "" || f != http.CanonicalHeaderKey(f) || !httpguts.ValidHeaderFieldName(f) {
				t.Errorf("%q: %s holds %q; want a canonical token", in, name, f)
			}
		}
	}
	if d.NoCacheFields != nil && !d.NoCache || d.PrivateFields != nil && !d.Private {
		t.Errorf("%q: field list without its flag: %+v", in, d)
	}
}
