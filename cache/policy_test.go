package cache

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// policyBase is the fixed instant every policy test time derives from; the
// tests never read the clock.
var policyBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is policyBase+d as an HTTP-date.
func at(d time.Duration) string {
	return policyBase.Add(d).Format(http.TimeFormat)
}

// withHeader returns a header holding the name, value pairs kv; a name may
// repeat to make several field lines.
func withHeader(kv []string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func policyReq(method string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, "http://example.com/a", nil)
	r.Header = withHeader(kv)
	return r
}

func policyResp(code int, kv ...string) *http.Response {
	return &http.Response{StatusCode: code, Header: withHeader(kv)}
}

func TestStorable(t *testing.T) {
	get := func(kv ...string) *http.Request { return policyReq(http.MethodGet, kv...) }
	fresh := []string{"Cache-Control", "max-age=60"}
	cases := []struct {
		name   string
		req    *http.Request
		resp   *http.Response
		o      StoreOptions
		ok     bool
		reason string
	}{
		{"GET 200 max-age", get(), policyResp(200, fresh...), StoreOptions{}, true, ""},
		{"nil request", nil, policyResp(200, fresh...), StoreOptions{}, false, "invalid"},
		{"nil response", get(), nil, StoreOptions{}, false, "invalid"},

		// Method: GET only; HEAD would only refresh (RFC 9111 4.3.5).
		{"HEAD", policyReq(http.MethodHead), policyResp(200, fresh...), StoreOptions{}, false, "method"},
		{"POST", policyReq(http.MethodPost), policyResp(200, fresh...), StoreOptions{}, false, "method"},

		// Status.
		{"1xx not final", get(), policyResp(103, fresh...), StoreOptions{}, false, "status"},
		{"206 no range support", get(), policyResp(206, fresh...), StoreOptions{}, false, "status"},
		{"304 updates, never stored", get(), policyResp(304, fresh...), StoreOptions{}, false, "status"},
		{"600 invalid", get(), policyResp(600, fresh...), StoreOptions{}, false, "status"},
		{"500 without explicit freshness", get(), policyResp(500, "Etag", `"x"`), StoreOptions{}, false, "status"},
		{"500 max-age", get(), policyResp(500, fresh...), StoreOptions{}, true, ""},
		{"302 s-maxage", get(), policyResp(302, "Cache-Control", "s-maxage=5"), StoreOptions{}, true, ""},
		{"503 Expires", get(), policyResp(503, "Expires", at(time.Hour), "Date", at(0)), StoreOptions{}, true, ""},
		{"500 public with ETag", get(), policyResp(500, "Cache-Control", "public", "Etag", `"x"`), StoreOptions{}, true, ""},
		{"404 Last-Modified (heuristic)", get(), policyResp(404, "Last-Modified", at(-time.Hour)), StoreOptions{}, true, ""},
		{"410 ETag", get(), policyResp(410, "Etag", `"x"`), StoreOptions{}, true, ""},

		// must-understand (RFC 9111 5.2.2.3).
		{"must-understand unknown status", get(), policyResp(500, "Cache-Control", "must-understand, max-age=60"), StoreOptions{}, false, "must-understand"},
		{"must-understand unknown status with no-store", get(), policyResp(500, "Cache-Control", "must-understand, no-store, max-age=60"), StoreOptions{}, false, "must-understand"},
		{"must-understand overrides no-store", get(), policyResp(200, "Cache-Control", "must-understand, no-store, max-age=60"), StoreOptions{}, true, ""},
		{"must-understand does not override request no-store", get("Cache-Control", "no-store"), policyResp(200, "Cache-Control", "must-understand, no-store, max-age=60"), StoreOptions{}, false, "no-store"},

		// no-store.
		{"request no-store", get("Cache-Control", "no-store"), policyResp(200, fresh...), StoreOptions{}, false, "no-store"},
		{"response no-store", get(), policyResp(200, "Cache-Control", "no-store, max-age=60"), StoreOptions{}, false, "no-store"},

		// private: bare, and with a field list (not stripped, so not stored).
		{"private", get(), policyResp(200, "Cache-Control", "private, max-age=60"), StoreOptions{}, false, "private"},
		{"private field list", get(), policyResp(200, "Cache-Control", `private="X-User", max-age=60`), StoreOptions{}, false, "private"},

		// Authorization (RFC 9111 3.5).
		{"authorization plain", get("Authorization", "Bearer t"), policyResp(200, fresh...), StoreOptions{}, false, "authorization"},
		{"authorization empty value", get("Authorization", ""), policyResp(200, fresh...), StoreOptions{}, false, "authorization"},
		{"authorization public", get("Authorization", "Bearer t"), policyResp(200, "Cache-Control", "public, max-age=60"), StoreOptions{}, true, ""},
		{"authorization s-maxage", get("Authorization", "Bearer t"), policyResp(200, "Cache-Control", "s-maxage=60"), StoreOptions{}, true, ""},
		{"authorization must-revalidate", get("Authorization", "Bearer t"), policyResp(200, "Cache-Control", "must-revalidate, max-age=60"), StoreOptions{}, true, ""},

		// Set-Cookie.
		{"set-cookie", get(), policyResp(200, "Cache-Control", "max-age=60", "Set-Cookie", "s=1"), StoreOptions{}, false, "set-cookie"},
		{"set-cookie allowed", get(), policyResp(200, "Cache-Control", "max-age=60", "Set-Cookie", "s=1"), StoreOptions{AllowSetCookie: true}, true, ""},

		// Vary.
		{"vary star", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "*"), StoreOptions{}, false, "vary-star"},
		{"vary star in list", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "Accept, *"), StoreOptions{}, false, "vary-star"},
		{"vary star on second line", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "Accept", "Vary", " * "), StoreOptions{}, false, "vary-star"},
		{"vary field", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "Accept-Encoding"), StoreOptions{}, true, ""},
		{"vary on a field the gateway sets", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "Accept, x-forwarded-for"), StoreOptions{}, false, "vary-star"},
		{"vary on Via", get(), policyResp(200, "Cache-Control", "max-age=60", "Vary", "VIA"), StoreOptions{}, false, "vary-star"},

		// Something must make the entry usable.
		{"nothing to reuse", get(), policyResp(200), StoreOptions{}, false, "no-validator-or-freshness"},
		{"public alone", get(), policyResp(200, "Cache-Control", "public"), StoreOptions{}, false, "no-validator-or-freshness"},
		{"ETag only", get(), policyResp(200, "Etag", `"v1"`), StoreOptions{}, true, ""},
		{"Last-Modified only", get(), policyResp(200, "Last-Modified", at(-time.Hour)), StoreOptions{}, true, ""},
		{"no-cache stored to revalidate", get(), policyResp(200, "Cache-Control", "no-cache"), StoreOptions{}, true, ""},
		{"max-age=0 is explicit", get(), policyResp(200, "Cache-Control", "max-age=0"), StoreOptions{}, true, ""},
		{"invalid Expires is explicit", get(), policyResp(200, "Expires", "0"), StoreOptions{}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, reason := Storable(c.req, c.resp, c.o)
			if ok != c.ok || reason != c.reason {
				t.Errorf("Storable = %v, %q; want %v, %q", ok, reason, c.ok, c.reason)
			}
		})
	}
}

type freshCase struct {
	name      string
	status    int
	hdr       []string // name, value pairs
	o         StoreOptions
	want      time.Duration
	heuristic bool
}

var freshCases = []freshCase{
	{"nothing", 200, nil, StoreOptions{}, 0, false},
	{"s-maxage beats max-age", 200, []string{"Cache-Control", "max-age=100, s-maxage=10"}, StoreOptions{}, 10 * time.Second, false},
	{"max-age", 200, []string{"Cache-Control", "max-age=100"}, StoreOptions{}, 100 * time.Second, false},
	{"max-age=0", 200, []string{"Cache-Control", "max-age=0"}, StoreOptions{}, 0, false},
	{"invalid max-age is 0", 200, []string{"Cache-Control", "max-age=abc", "Expires", at(time.Hour), "Date", at(0)}, StoreOptions{}, 0, false},
	{"max-age clamped", 200, []string{"Cache-Control", "max-age=99999999999"}, StoreOptions{}, time.Duration(1<<31) * time.Second, false},
	{"max-age beats Expires", 200, []string{"Cache-Control", "max-age=100", "Expires", at(time.Hour), "Date", at(0)}, StoreOptions{}, 100 * time.Second, false},
	{"max-age beats heuristic", 200, []string{"Cache-Control", "max-age=100", "Last-Modified", at(-100 * time.Hour), "Date", at(0)}, StoreOptions{}, 100 * time.Second, false},
	{"Expires minus Date", 200, []string{"Expires", at(time.Hour), "Date", at(0)}, StoreOptions{}, time.Hour, false},
	{"Expires on any status", 500, []string{"Expires", at(time.Hour), "Date", at(0)}, StoreOptions{}, time.Hour, false},
	{"Expires beats heuristic", 200, []string{"Expires", at(time.Minute), "Date", at(0), "Last-Modified", at(-100 * time.Hour)}, StoreOptions{}, time.Minute, false},
	{"Expires in RFC 850 format", 200, []string{"Expires", policyBase.Add(time.Hour).Format("Monday, 02-Jan-06 15:04:05 GMT"), "Date", at(0)}, StoreOptions{}, time.Hour, false},
	{"Expires in asctime format", 200, []string{"Expires", policyBase.Add(time.Hour).Format(time.ANSIC), "Date", at(0)}, StoreOptions{}, time.Hour, false},
	{"Expires with zone UTC is expired", 200, []string{"Expires", policyBase.Add(time.Hour).Format(time.RFC850), "Date", at(0)}, StoreOptions{}, 0, false},
	{"Expires with a single-digit hour is expired", 200, []string{"Expires", "Tue, 01 Jan 2030 1:00:00 GMT", "Date", "Tue, 01 Jan 2030 00:00:00 GMT"}, StoreOptions{}, 0, false},
	{"Date in lower case: Expires without a valid Date", 200, []string{"Expires", at(time.Hour), "Date", "tue, 01 jan 2030 00:00:00 gmt"}, StoreOptions{}, 0, false},
	{"Expires 0 is expired", 200, []string{"Expires", "0", "Date", at(0), "Last-Modified", at(-100 * time.Hour)}, StoreOptions{}, 0, false},
	{"Expires before Date", 200, []string{"Expires", at(-time.Hour), "Date", at(0)}, StoreOptions{}, 0, false},
	{"Expires without Date", 200, []string{"Expires", at(time.Hour)}, StoreOptions{}, 0, false},
	{"Expires with invalid Date", 200, []string{"Expires", at(time.Hour), "Date", "yesterday"}, StoreOptions{}, 0, false},
	{"conflicting Expires lines", 200, []string{"Expires", at(time.Hour), "Expires", at(2 * time.Hour), "Date", at(0)}, StoreOptions{}, 0, false},
	{"repeated equal Expires lines", 200, []string{"Expires", at(time.Hour), "Expires", at(time.Hour), "Date", at(0)}, StoreOptions{}, time.Hour, false},
	{"heuristic 10%", 200, []string{"Last-Modified", at(-10 * time.Hour), "Date", at(0)}, StoreOptions{}, time.Hour, true},
	{"heuristic fraction", 404, []string{"Last-Modified", at(-10 * time.Hour), "Date", at(0)}, StoreOptions{HeuristicFraction: 0.5}, 5 * time.Hour, true},
	{"heuristic NaN fraction is default", 200, []string{"Last-Modified", at(-10 * time.Hour), "Date", at(0)}, StoreOptions{HeuristicFraction: math.NaN()}, time.Hour, true},
	{"heuristic capped at 24h", 200, []string{"Last-Modified", at(-1000 * time.Hour), "Date", at(0)}, StoreOptions{}, 24 * time.Hour, true},
	{"heuristic custom cap", 200, []string{"Last-Modified", at(-100 * time.Hour), "Date", at(0)}, StoreOptions{HeuristicMax: 2 * time.Hour}, 2 * time.Hour, true},
	{"heuristic infinite fraction capped", 200, []string{"Last-Modified", "Mon, 01 Jan 0001 00:00:00 GMT", "Date", at(0)}, StoreOptions{HeuristicFraction: math.Inf(1)}, 24 * time.Hour, true},
	{"heuristic Last-Modified after Date", 200, []string{"Last-Modified", at(time.Hour), "Date", at(0)}, StoreOptions{}, 0, true},
	{"heuristic invalid Last-Modified", 200, []string{"Last-Modified", "last week", "Date", at(0)}, StoreOptions{}, 0, true},
	{"heuristic without Date", 200, []string{"Last-Modified", at(-10 * time.Hour)}, StoreOptions{}, 0, true},
	{"no heuristic without Last-Modified", 200, []string{"Date", at(0), "Etag", `"x"`}, StoreOptions{}, 0, false},
	{"no heuristic for 500", 500, []string{"Last-Modified", at(-10 * time.Hour), "Date", at(0)}, StoreOptions{}, 0, false},
	{"no heuristic for public 500", 500, []string{"Cache-Control", "public", "Last-Modified", at(-10 * time.Hour), "Date", at(0)}, StoreOptions{}, 0, false},
}

func TestFreshnessLifetime(t *testing.T) {
	for _, c := range freshCases {
		t.Run(c.name, func(t *testing.T) {
			got, h := FreshnessLifetime(policyResp(c.status, c.hdr...), c.o)
			if got != c.want || h != c.heuristic {
				t.Errorf("FreshnessLifetime = %v, %v; want %v, %v", got, h, c.want, c.heuristic)
			}
		})
	}
	if got, h := FreshnessLifetime(nil, StoreOptions{}); got != 0 || h {
		t.Errorf("FreshnessLifetime(nil) = %v, %v; want 0, false", got, h)
	}
}

func TestCurrentAge(t *testing.T) {
	// The request left at policyBase, the response arrived 2s later, and
	// the cache is asked 10s after that.
	reqT, respT, now := policyBase, policyBase.Add(2*time.Second), policyBase.Add(12*time.Second)
	cases := []struct {
		name              string
		hdr               []string
		reqT, respT, nowT time.Time
		want              time.Duration
	}{
		{"no Date no Age: delay plus resident", nil, reqT, respT, now, 12 * time.Second},
		{"apparent age from Date", []string{"Date", at(-3 * time.Second)}, reqT, respT, now, 15 * time.Second},
		{"Date equal to response time", []string{"Date", at(2 * time.Second)}, reqT, respT, now, 12 * time.Second},
		{"Date in the future: apparent age 0", []string{"Date", at(time.Hour)}, reqT, respT, now, 12 * time.Second},
		{"invalid Date counts as response time", []string{"Date", "soon"}, reqT, respT, now, 12 * time.Second},
		{"Age corrected by delay", []string{"Date", at(0), "Age", "100"}, reqT, respT, now, 112 * time.Second},
		{"apparent age beats smaller Age", []string{"Date", at(-60 * time.Second), "Age", "5"}, reqT, respT, now, 72 * time.Second},
		{"invalid Age is 0", []string{"Age", "abc"}, reqT, respT, now, 12 * time.Second},
		{"negative Age is 0", []string{"Age", "-5"}, reqT, respT, now, 12 * time.Second},
		{"Age list: first member", []string{"Age", "5, 6"}, reqT, respT, now, 17 * time.Second},
		{"Age lines: first line", []string{"Age", "5", "Age", "6"}, reqT, respT, now, 17 * time.Second},
		{"Age list with empty first element", []string{"Age", ", 5"}, reqT, respT, now, 17 * time.Second},
		{"Age list with invalid first member is ignored", []string{"Age", "x, 6"}, reqT, respT, now, 12 * time.Second},
		{"quoted Age is ignored", []string{"Age", `"5"`}, reqT, respT, now, 12 * time.Second},
		{"Age with OWS", []string{"Age", " 7 "}, reqT, respT, now, 19 * time.Second},
		{"Age clamped", []string{"Age", "99999999999"}, reqT, respT, now, time.Duration(1<<31)*time.Second + 12*time.Second},
		{"now before response: no resident time", nil, reqT, respT, policyBase, 2 * time.Second},
		{"response before request: no delay", nil, respT, reqT, now, 12 * time.Second},
		{"saturates", []string{"Age", "99999999999"}, reqT, respT, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CurrentAge(policyResp(200, c.hdr...), c.reqT, c.respT, c.nowT)
			if got != c.want {
				t.Errorf("CurrentAge = %v; want %v", got, c.want)
			}
		})
	}
	if got := CurrentAge(nil, reqT, respT, now); got != 12*time.Second {
		t.Errorf("CurrentAge(nil) = %v; want 12s", got)
	}
}

func TestUsable(t *testing.T) {
	cc := ParseCacheControlValue
	s := time.Second
	cases := []struct {
		name          string
		req, resp     string
		age, lifetime time.Duration
		want          Verdict
		staleness     time.Duration
	}{
		{"fresh", "", "max-age=100", 10 * s, 100 * s, Fresh, 0},
		{"age equals lifetime is stale", "", "max-age=100", 100 * s, 100 * s, Stale, 0},
		{"max-age=0 is stale at once", "", "max-age=0", 0, 0, Stale, 0},
		{"stale", "", "max-age=100", 110 * s, 100 * s, Stale, 10 * s},
		{"negative inputs count as 0", "", "", -5 * s, -5 * s, Stale, 0},

		// no-cache (RFC 9111 5.2.1.4, 5.2.2.4).
		{"request no-cache", "no-cache", "max-age=100", 10 * s, 100 * s, Revalidate, 0},
		{"response no-cache", "", "no-cache", 10 * s, 100 * s, Revalidate, 0},
		{"response no-cache field list", "", `no-cache="Set-Cookie"`, 10 * s, 100 * s, Revalidate, 0},
		{"request no-cache on stale", "no-cache, max-stale", "", 110 * s, 100 * s, Revalidate, 10 * s},

		// Request max-age (5.2.1.1).
		{"request max-age exceeded", "max-age=5", "", 10 * s, 100 * s, Revalidate, 0},
		{"request max-age met", "max-age=10", "", 10 * s, 100 * s, Fresh, 0},
		{"request max-age=0", "max-age=0", "", 0, 100 * s, Fresh, 0},
		{"request max-age is not relaxed by max-stale", "max-age=5, max-stale", "", 110 * s, 100 * s, Revalidate, 10 * s},

		// min-fresh (5.2.1.3).
		{"min-fresh not met", "min-fresh=50", "", 60 * s, 100 * s, Revalidate, 0},
		{"min-fresh met exactly", "min-fresh=40", "", 60 * s, 100 * s, Fresh, 0},
		{"min-fresh on stale", "min-fresh=0, max-stale", "", 110 * s, 100 * s, Revalidate, 10 * s},

		// max-stale (5.2.1.2).
		{"max-stale covers", "max-stale=20", "", 110 * s, 100 * s, StaleAcceptable, 10 * s},
		{"max-stale at limit", "max-stale=10", "", 110 * s, 100 * s, StaleAcceptable, 10 * s},
		{"max-stale exceeded", "max-stale=20", "", 130 * s, 100 * s, Stale, 30 * s},
		{"bare max-stale", "max-stale", "", 1000 * s, 100 * s, StaleAcceptable, 900 * s},
		{"max-stale on fresh stays fresh", "max-stale", "", 10 * s, 100 * s, Fresh, 0},

		// Must not serve stale (4.2.4, 5.2.2.2, 5.2.2.8, 5.2.2.10).
		{"must-revalidate stale", "", "must-revalidate", 110 * s, 100 * s, Revalidate, 10 * s},
		{"must-revalidate beats max-stale", "max-stale", "must-revalidate", 110 * s, 100 * s, Revalidate, 10 * s},
		{"proxy-revalidate beats max-stale", "max-stale=60", "proxy-revalidate", 110 * s, 100 * s, Revalidate, 10 * s},
		{"s-maxage beats max-stale", "max-stale=60", "s-maxage=100", 110 * s, 100 * s, Revalidate, 10 * s},
		{"must-revalidate fresh", "", "must-revalidate, max-age=100", 10 * s, 100 * s, Fresh, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, st := Usable(cc(c.req), cc(c.resp), c.age, c.lifetime)
			if v != c.want || st != c.staleness {
				t.Errorf("Usable = %v, %v; want %v, %v", v, st, c.want, c.staleness)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{
		Revalidate: "Revalidate", Stale: "Stale", StaleAcceptable: "StaleAcceptable", Fresh: "Fresh", Verdict(9): "Verdict(invalid)",
	} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q; want %q", int(v), got, want)
		}
	}
	var zero Verdict
	if zero != Revalidate {
		t.Errorf("zero Verdict = %v; want Revalidate", zero)
	}
}

// firstValue is the first value of name in the pairs kv, or "".
func firstValue(kv []string, name string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == name {
			return kv[i+1]
		}
	}
	return ""
}

func FuzzFreshness(f *testing.F) {
	for _, c := range freshCases {
		f.Add(c.status, firstValue(c.hdr, "Cache-Control"), firstValue(c.hdr, "Expires"),
			firstValue(c.hdr, "Date"), firstValue(c.hdr, "Last-Modified"), "")
	}
	f.Add(200, "max-age=5", "", at(-time.Hour), "", "3600")
	f.Add(200, "", "", "", "", "99999999999999999999")
	f.Fuzz(func(t *testing.T, status int, cc, expires, date, lm, age string) {
		var kv []string
		for _, p := range [][2]string{{"Cache-Control", cc}, {"Expires", expires}, {"Date", date}, {"Last-Modified", lm}, {"Age", age}} {
			if p[1] != "" {
				kv = append(kv, p[0], p[1])
			}
		}
		resp := policyResp(status, kv...)
		o := StoreOptions{}
		lifetime, heuristic := FreshnessLifetime(resp, o)
		if lifetime < 0 {
			t.Fatalf("FreshnessLifetime = %v; want >= 0", lifetime)
		}
		if heuristic && lifetime > defaultHeuristicMax {
			t.Fatalf("heuristic lifetime %v over the %v cap", lifetime, defaultHeuristicMax)
		}
		reqT, respT := policyBase, policyBase.Add(time.Second)
		for _, now := range []time.Time{policyBase.Add(-time.Hour), respT, policyBase.Add(time.Hour), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)} {
			if a := CurrentAge(resp, reqT, respT, now); a < 0 {
				t.Fatalf("CurrentAge(now=%v) = %v; want >= 0", now, a)
			}
			if a := CurrentAge(resp, respT, reqT, now); a < 0 {
				t.Fatalf("CurrentAge(reversed, now=%v) = %v; want >= 0", now, a)
			}
		}
		a := CurrentAge(resp, reqT, respT, policyBase.Add(time.Hour))
		respCC := ParseCacheControl(resp.Header)
		if _, st := Usable(respCC, respCC, a, lifetime); st < 0 {
			t.Fatalf("Usable staleness = %v; want >= 0", st)
		}
		Storable(policyReq(http.MethodGet), resp, o)
	})
}
