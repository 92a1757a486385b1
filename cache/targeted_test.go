package cache

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseSFDictionary(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // members as key=kind:value, "" for an empty dictionary; "!" for a parse error
	}{
		{"", ""},
		{"   ", ""},
		{"max-age=60", "max-age=i:60"},
		{"  max-age=60 ,\tno-store  ", "max-age=i:60 no-store=b:true"},
		{"no-store=?0, private=?1", "no-store=b:false private=b:true"},
		{"a=1, b=2, a=3", "a=i:3 b=i:2"},
		{`a="x\"y\\z"`, `a=s:x"y\z`},
		{"a=tok/en:1", "a=t:tok/en:1"},
		{"a=*x", "a=t:*x"},
		{"a=1.5", "a=d:"},
		{"a=-12", "a=i:-12"},
		{"a=:aGk=:", "a=y:"},
		{"a=(1 2 \"x\");p, b", "a=l: b=b:true"},
		{"a=();p=1", "a=l:"},
		{"max-age=60;foo=bar;baz", "max-age=i:60"},
		{"*a=1", "*a=i:1"},
		{"a=999999999999999", "a=i:999999999999999"},

		{"Max-Age=60", "!"},
		{"max-age = 60", "!"},
		{"max-age=60,", "!"},
		{",max-age=60", "!"},
		{"max-age=60,,a", "!"},
		{"max-age=60 a", "!"},
		{"max-age=1234567890123456", "!"},
		{"a=1234567890123.1", "!"},
		{"a=1.2345", "!"},
		{"a=1.", "!"},
		{"a=-", "!"},
		{"a=?2", "!"},
		{"a=\"unterminated", "!"},
		{"a=\"bad\\n\"", "!"},
		{"a=\"tab\there\"", "!"},
		{"a=:aGk:", "!"},
		{"a=:a=Gk:", "!"},
		{"a=(1 2", "!"},
		{"a=(1,2)", "!"},
		{"a;=1", "!"},
		{"a=1;P=2", "!"},
		{"1a=1", "!"},
		{"\tmax-age=60", "!"},
		{"a=é", "!"},
	} {
		ms, ok := parseSFDictionary(tc.in)
		got := "!"
		if ok {
			var parts []string
			for _, m := range ms {
				parts = append(parts, m.key+"="+m.val.String())
			}
			got = strings.Join(parts, " ")
		}
		if got != tc.want {
			t.Errorf("parseSFDictionary(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// String is the test form of a value: kind letter, ":", the value kept.
func (v sfValue) String() string {
	switch v.kind {
	case sfInteger:
		return "i:" + itoa(v.i)
	case sfDecimal:
		return "d:"
	case sfString:
		return "s:" + v.s
	case sfToken:
		return "t:" + v.s
	case sfBinary:
		return "y:"
	case sfBoolean:
		if v.b {
			return "b:true"
		}
		return "b:false"
	case sfInnerList:
		return "l:"
	}
	return "?"
}

func itoa(n int64) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestCacheDirectives(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hdr      []string
		field    string
		targeted bool
		want     func(d *Directives)
	}{
		{"Cache-Control alone", []string{"Cache-Control", "max-age=60"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"CDN-Cache-Control replaces Cache-Control", []string{"Cache-Control", "max-age=60, must-revalidate", "CDN-Cache-Control", "max-age=600"}, "", true, func(d *Directives) { d.MaxAge = 600 }},
		{"lines joined", []string{"CDN-Cache-Control", "max-age=600", "CDN-Cache-Control", "no-store"}, "", true, func(d *Directives) { d.MaxAge = 600; d.NoStore = true }},
		{"booleans", []string{"CDN-Cache-Control", "private, public=?0, no-cache, must-revalidate, proxy-revalidate, no-transform, must-understand, immutable"}, "", true,
			func(d *Directives) {
				d.Private, d.NoCache, d.MustRevalidate, d.ProxyRevalidate, d.NoTransform, d.MustUnderstand, d.Immutable = true, true, true, true, true, true, true
			}},
		{"deltas", []string{"CDN-Cache-Control", "s-maxage=1, max-age=2, stale-while-revalidate=3, stale-if-error=4"}, "", true,
			func(d *Directives) { d.SMaxAge, d.MaxAge, d.StaleWhileRevalidate, d.StaleIfError = 1, 2, 3, 4 }},
		{"delta capped", []string{"CDN-Cache-Control", "max-age=999999999999999"}, "", true, func(d *Directives) { d.MaxAge = deltaSecondsMax }},
		{"no-cache with a field list", []string{"CDN-Cache-Control", `no-cache="Set-Cookie"`}, "", true, func(d *Directives) { d.NoCache = true }},
		{"unknown directives ignored", []string{"CDN-Cache-Control", `max-age=5, foo="bar", baz=(1 2)`}, "", true, func(d *Directives) { d.MaxAge = 5 }},
		{"parameters ignored", []string{"CDN-Cache-Control", `max-age=5;x=1`}, "", true, func(d *Directives) { d.MaxAge = 5 }},
		{"duplicate: the last", []string{"CDN-Cache-Control", "max-age=5, max-age=6"}, "", true, func(d *Directives) { d.MaxAge = 6 }},
		{"empty: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", ""}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"syntax error: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "max-age=600,"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"upper case: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "Max-Age=600"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"quoted max-age: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", `max-age="600"`}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"negative max-age: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "max-age=-1"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"decimal max-age: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "max-age=1.5"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"max-age without value: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "max-age"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"private with a list: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", `private="Set-Cookie"`}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"no-store as integer: ignored", []string{"Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store=1"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
		{"route field first", []string{"CDN-Cache-Control", "max-age=600", "Gateway-Cache-Control", "max-age=6"}, "Gateway-Cache-Control", true, func(d *Directives) { d.MaxAge = 6 }},
		{"invalid route field: CDN-Cache-Control", []string{"CDN-Cache-Control", "max-age=600", "Gateway-Cache-Control", "max-age=x y"}, "Gateway-Cache-Control", true, func(d *Directives) { d.MaxAge = 600 }},
		{"another route's field: not ours", []string{"Cache-Control", "max-age=60", "Gateway-Cache-Control", "max-age=6"}, "", false, func(d *Directives) { d.MaxAge = 60 }},
	} {
		h := http.Header{}
		for i := 0; i < len(tc.hdr); i += 2 {
			h.Add(tc.hdr[i], tc.hdr[i+1])
		}
		want := newParser().d
		tc.want(&want)
		got, targeted := cacheDirectives(h, tc.field)
		if targeted != tc.targeted || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cacheDirectives = %+v, %v; want %+v, %v", tc.name, got, targeted, want, tc.targeted)
		}
	}
}

// FuzzParseSFDictionary checks that the parser never panics, that keys it
// returns are valid and unique, and that a dictionary it accepts is
// accepted again after the value is padded with the whitespace the syntax
// allows around it: SP before, OWS after the last member.
func FuzzParseSFDictionary(f *testing.F) {
	for _, s := range []string{
		"max-age=60", "no-store, private", `a="x\"y", b=:aGk=:;p=?1`, "a=(1 2);q, b=1.5", "a=1,", "A=1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, ok := parseSFDictionary(s)
		if !ok {
			if ms != nil {
				t.Fatalf("%q: failed with members", s)
			}
			return
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if m.key == "" || seen[m.key] || m.val.kind == 0 {
				t.Fatalf("%q: member %+v", s, m)
			}
			seen[m.key] = true
		}
		if len(ms) == 0 {
			return // trailing OWS follows a member only
		}
		ms2, ok2 := parseSFDictionary("  " + s + " \t")
		if !ok2 || !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("%q: padded: %v, %v; unpadded %v", s, ms2, ok2, ms)
		}
		// What it accepts must not be taken for more by the directives.
		_, _ = targetedDirectives([]string{s})
	})
}
