package cache_test

import (
	"testing"
	"time"
)

// TestExactFreshnessFields runs the exact reading of the fields freshness
// is computed from (Expires, Date, Age) against a counting origin. The
// fake clock starts at epoch, Tuesday 2030-01-01 00:00:00 GMT, so the
// literal dates below are epoch+60s in each form.
func TestExactFreshnessFields(t *testing.T) {
	const miss60 = "fwd=uri-miss; fwd-status=200; ttl=60; stored"
	const miss0 = "fwd=uri-miss; fwd-status=200; ttl=0; stored"
	const stale0 = "fwd=stale; fwd-status=200; ttl=0; stored"
	expires := func(v string) resp { return resp{hdr: []string{"Expires", v}, body: "v{n}"} }
	fresh60 := []step{
		{count: 1, body: "v1", cs: miss60},
		{advance: 59 * time.Second, count: 1, body: "v1", cs: "hit; ttl=1", age: "59"},
		{advance: 2 * time.Second, count: 2, body: "v2", cs: "*"},
	}
	expired := []step{
		{count: 1, body: "v1", cs: miss0},
		{count: 2, body: "v2", cs: stale0},
	}
	// withAge is max-age=60 and the Age lines given.
	withAge := func(ages ...string) resp {
		h := []string{"Cache-Control", "max-age=60"}
		for _, a := range ages {
			h = append(h, "Age", a)
		}
		return resp{hdr: h, body: "v{n}"}
	}
	ageUsed30 := []step{
		// A miss passes the origin's Age on as it came.
		{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=30; stored", age: "*"},
		{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=20", age: "40"},
		{advance: 21 * time.Second, count: 2, body: "v2", cs: "*", age: "*"},
	}
	ageIgnored := []step{
		{count: 1, body: "v1", cs: miss60, age: "*"},
		{advance: 10 * time.Second, count: 1, body: "v1", cs: "hit; ttl=50", age: "10"},
	}
	runRows(t, []row{
		{name: "Expires IMF-fixdate", origin: expires("Tue, 01 Jan 2030 00:01:00 GMT"), steps: fresh60},
		{name: "Expires rfc850-date", origin: expires("Tuesday, 01-Jan-30 00:01:00 GMT"), steps: fresh60},
		{name: "Expires asctime-date", origin: expires("Tue Jan  1 00:01:00 2030"), steps: fresh60},
		// RFC 9111 5.3: an invalid Expires means already expired, however
		// close to an HTTP-date it looks.
		{name: "Expires 0", origin: expires("0"), steps: expired},
		{name: "Expires with a single-digit hour", origin: expires("Tue, 01 Jan 2030 0:01:00 GMT"), steps: expired},
		{name: "Expires in UTC", origin: expires("Tue, 01 Jan 2030 00:01:00 UTC"), steps: expired},
		{name: "Expires in lower case", origin: expires("tue, 01 jan 2030 00:01:00 gmt"), steps: expired},
		{name: "Expires with a doubled space", origin: expires("Tue, 01 Jan 2030  00:01:00 GMT"), steps: expired},
		{name: "Expires asctime without day padding", origin: expires("Tue Jan 1 00:01:00 2030"), steps: expired},
		{name: "Expires rfc850 with a four-digit year", origin: expires("Tuesday, 01-Jan-2030 00:01:00 GMT"), steps: expired},
		{name: "Expires on a day the month lacks", origin: expires("Thu, 31 Apr 2030 00:01:00 GMT"), steps: expired},
		// Expires - Date needs a valid Date; an inexact one gives no
		// lifetime rather than one measured from a guess.
		{name: "inexact Date with Expires",
			origin: resp{hdr: []string{"Expires", "Tue, 01 Jan 2030 00:01:00 GMT", "Date", "Tue, 01 Jan 2030 0:00:00 GMT"}, body: "v{n}"},
			steps:  expired},

		// RFC 9111 4.2.1: several values of one directive are either
		// the first or stale; for max-age and s-maxage the cache takes
		// stale unless they agree, and the other directives their first
		// valid occurrence.
		{name: "max-age twice, same value", origin: cc("max-age=60, max-age=60"), steps: fresh60},
		{name: "max-age twice, different values: stale", origin: cc("max-age=600, max-age=60"), steps: expired},
		{name: "max-age on two lines, different values: stale", origin: cc("max-age=600", "Cache-Control", "max-age=60"), steps: expired},
		{name: "max-age invalid: stale", origin: cc("max-age=1h", "Expires", "@+60s"), steps: expired},
		{name: "s-maxage conflicting: stale despite max-age", origin: cc("s-maxage=60, max-age=600, s-maxage=30"), steps: expired},
		{name: "Expires on two lines that differ: stale",
			origin: resp{hdr: []string{"Expires", "@+60s", "Expires", "@+600s"}, body: "v{n}"}, steps: expired},
		{name: "stale-if-error: the first valid value",
			origin: cc("max-age=60, stale-if-error=x, stale-if-error=300, stale-if-error=5"),
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{label: "origin fails 100s past the lifetime: within 300s", advance: 160 * time.Second,
					origin: &resp{status: 503, body: "down"}, count: 2, body: "v1", cs: "*", age: "160"},
			}},

		// RFC 9110 13.1.3: an If-Modified-Since that is not an exact
		// HTTP-date is ignored when a hit is answered.
		{name: "If-Modified-Since read exactly",
			origin: resp{hdr: []string{"Cache-Control", "max-age=60", "Last-Modified", "Mon, 31 Dec 2029 00:00:00 GMT"}, body: "v{n}"},
			steps: []step{
				{count: 1, body: "v1", cs: miss60},
				{label: "exact date: 304", hdr: []string{"If-Modified-Since", "Tue, 01 Jan 2030 00:00:00 GMT"},
					count: 1, status: 304, body: "", cs: "hit; ttl=60", age: "0"},
				{label: "single-digit hour: ignored", hdr: []string{"If-Modified-Since", "Tue, 01 Jan 2030 0:00:00 GMT"},
					count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
				{label: "zone UTC: ignored", hdr: []string{"If-Modified-Since", "Tue, 01 Jan 2030 00:00:00 UTC"},
					count: 1, body: "v1", cs: "hit; ttl=60", age: "0"},
			}},

		// RFC 9111 5.1.
		{name: "Age", origin: withAge("30"), steps: ageUsed30},
		{name: "Age list: the first member", origin: withAge("30, 40"), steps: ageUsed30},
		{name: "Age lines: the first line", origin: withAge("30", "40"), steps: ageUsed30},
		{name: "Age negative: ignored", origin: withAge("-30"), steps: ageIgnored},
		{name: "Age not an integer: ignored", origin: withAge("30.5"), steps: ageIgnored},
		{name: "Age quoted: ignored", origin: withAge(`"30"`), steps: ageIgnored},
		{name: "Age list led by junk: ignored", origin: withAge("x, 30"), steps: ageIgnored},
		{name: "Age too large: capped, so already stale", origin: withAge("99999999999999999999"),
			steps: []step{
				// Cache-Status ttl goes negative once stale (RFC 9211 2.5).
				{count: 1, body: "v1", cs: "fwd=uri-miss; fwd-status=200; ttl=-2147483588; stored", age: "*"},
				{count: 2, body: "v2", cs: "fwd=stale; fwd-status=200; ttl=-2147483588; stored", age: "*"},
			}},
	})
}
