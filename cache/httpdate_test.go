package cache

import (
	"net/http"
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero: invalid
	}{
		// The three forms of RFC 9110 5.6.7.
		{"Sun, 06 Nov 1994 08:49:37 GMT", want},
		{"Sunday, 06-Nov-94 08:49:37 GMT", want},
		{"Sun Nov  6 08:49:37 1994", want},
		{"Sun Nov 16 08:49:37 1994", time.Date(1994, 11, 16, 8, 49, 37, 0, time.UTC)},
		// The day name is not checked against the date.
		{"Mon, 06 Nov 1994 08:49:37 GMT", want},
		// A leap second is in the grammar.
		{"Sun, 06 Nov 1994 23:59:60 GMT", time.Date(1994, 11, 7, 0, 0, 0, 0, time.UTC)},
		{"Thu, 29 Feb 2024 00:00:00 GMT", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		// rfc850 years: at most 50 years ahead, else the century before.
		{"Friday, 01-Jan-76 00:00:00 GMT", time.Date(2076, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Friday, 01-Jan-77 00:00:00 GMT", time.Date(1977, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Friday, 01-Jan-26 00:00:00 GMT", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},

		// Invalid: what http.ParseTime would take or other near misses.
		{"", time.Time{}},
		{"0", time.Time{}},
		{"Sun, 06 Nov 1994 8:49:37 GMT", time.Time{}},
		{"Sun, 6 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun,  06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37  GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 gmt", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 +0000", time.Time{}},
		{"sun, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 NOV 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 GMT ", time.Time{}},
		{" Sun, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 24:00:00 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:60:00 GMT", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:61 GMT", time.Time{}},
		{"Sun, 31 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sun, 00 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Tue, 29 Feb 2023 00:00:00 GMT", time.Time{}},
		{"Sun, 06 Nov 94 08:49:37 GMT", time.Time{}},
		{"Sun, 06-Nov-94 08:49:37 GMT", time.Time{}},
		{"Sunday, 06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", time.Time{}},
		{"Sunday, 6-Nov-94 08:49:37 GMT", time.Time{}},
		{"Sunday, 06-Nov-94 08:49:37 UTC", time.Time{}},
		{"Sunday,  06-Nov-94 08:49:37 GMT", time.Time{}},
		{"sunday, 06-Nov-94 08:49:37 GMT", time.Time{}},
		{"Sun Nov 6 08:49:37 1994", time.Time{}},
		{"Sun Nov 06 08:49:37 1994", want}, // 2DIGIT is one of date3's forms
		{"Sun Nov  6 08:49:37 1994 GMT", time.Time{}},
		{"Sun  Nov  6 08:49:37 1994", time.Time{}},
		{"Sun Nov  6  8:49:37 1994", time.Time{}},
		{"Sun Nov  6 08:49:37 94", time.Time{}},
		{"Sun, 06 Nov 1994 08:49:37 GMT\x00", time.Time{}},
		{"Sun, +6 Nov 1994 08:49:37 GMT", time.Time{}},
	} {
		got, ok := parseHTTPDate(tc.in, now)
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzParseHTTPDate checks that the parser never panics, that what it
// accepts is UTC and lies within the grammar's years, and that an
// accepted IMF-fixdate is read as net/http reads it (net/http accepts a
// superset; second 60 excepted, which time.Parse rejects).
func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
		"Sun, 06 Nov 1994 8:49:37 GMT", "0", "", "Thu, 29 Feb 2024 23:59:60 GMT",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseHTTPDate(s)
		if !ok {
			if !got.IsZero() {
				t.Fatalf("%q: invalid but %v", s, got)
			}
			return
		}
		if got.Location() != time.UTC || got.Year() < 0 || got.Year() > 10000 {
			t.Fatalf("%q: %v", s, got)
		}
		if len(s) == 29 && s[23:25] != "60" {
			ref, err := http.ParseTime(s)
			if err != nil || !ref.Equal(got) {
				t.Fatalf("%q: %v; net/http: %v, %v", s, got, ref, err)
			}
		}
	})
}
