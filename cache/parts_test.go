package cache_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

// newPartsGateway is a route without slices in front of a rangeOrigin
// serving body with a strong validator.
func newPartsGateway(t *testing.T, body []byte) (*gateway, *rangeOrigin) {
	t.Helper()
	g := newGateway(t, gwConfig{})
	o := &rangeOrigin{body: body, etag: `"p1"`}
	g.origin.handle(o.serve)
	return g, o
}

// getRange asks for Range rng and checks the 206 and its bytes against
// body.
func getRange(t *testing.T, g *gateway, body []byte, rng string, from, to int, hdr ...string) result {
	t.Helper()
	res := g.get(t, "/file", append([]string{"Range", rng}, hdr...)...)
	if res.status != http.StatusPartialContent {
		t.Fatalf("%s: status %d; want 206 (Cache-Status %q)", rng, res.status, res.header.Get("Cache-Status"))
	}
	if res.body != string(body[from:to+1]) {
		t.Fatalf("%s: body differs (%d bytes, want %d)", rng, len(res.body), to-from+1)
	}
	if got, want := res.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", from, to, len(body)); got != want {
		t.Fatalf("%s: Content-Range %q; want %q", rng, got, want)
	}
	if got := res.header.Get("Content-Length"); got != strconv.Itoa(to-from+1) {
		t.Fatalf("%s: Content-Length %q; want %d", rng, got, to-from+1)
	}
	if res.header.Get("Gateway-Stored-Parts") != "" {
		t.Fatalf("%s: the cache's own field reached the client", rng)
	}
	return res
}

func isHit(res result) bool { return strings.Contains(res.header.Get("Cache-Status"), "; hit") }

// TestPartStoredAndReused: a 206 to a range request is stored; the same
// range and any range inside it are then answered from the cache, with
// Age and a hit; a range outside it goes to the origin as sent.
func TestPartStoredAndReused(t *testing.T) {
	body := newBody(100_000, 3)
	g, o := newPartsGateway(t, body)

	res := getRange(t, g, body, "bytes=1000-5999", 1000, 5999)
	if isHit(res) || !strings.Contains(res.header.Get("Cache-Status"), "stored") {
		t.Fatalf("first: Cache-Status %q; want a stored miss", res.header.Get("Cache-Status"))
	}
	if got := o.seen(); len(got) != 1 || got[0] != "bytes=1000-5999" {
		t.Fatalf("origin saw %q; want the client's range as sent", got)
	}
	g.clk.Advance(7 * time.Second)
	for _, tc := range []struct {
		rng      string
		from, to int
	}{
		{"bytes=1000-5999", 1000, 5999},
		{"bytes=2000-2999", 2000, 2999},
		{"bytes=5999-5999", 5999, 5999},
	} {
		res := getRange(t, g, body, tc.rng, tc.from, tc.to)
		if !isHit(res) {
			t.Errorf("%s: Cache-Status %q; want a hit", tc.rng, res.header.Get("Cache-Status"))
		}
		if res.header.Get("Age") != "7" {
			t.Errorf("%s: Age %q; want 7", tc.rng, res.header.Get("Age"))
		}
		if res.header.Get("ETag") != `"p1"` || res.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%s: stored fields lost: %v", tc.rng, res.header)
		}
	}
	if n := len(o.seen()); n != 1 {
		t.Fatalf("origin asked %d times; want 1", n)
	}
	res = getRange(t, g, body, "bytes=900-1100", 900, 1100)
	if !strings.Contains(res.header.Get("Cache-Status"), "fwd=partial") {
		t.Errorf("range beyond the part: Cache-Status %q; want fwd=partial", res.header.Get("Cache-Status"))
	}
	if got := o.seen(); got[len(got)-1] != "bytes=900-1100" {
		t.Errorf("origin saw %q last; want bytes=900-1100", got[len(got)-1])
	}
	st := g.stats(t, "?route=r")
	if st.Hits != 3 || st.Misses != 2 {
		t.Errorf("stats: %d hits, %d misses; want 3, 2", st.Hits, st.Misses)
	}
	if want := uint64(5000 + 1000 + 1); st.HitBytes != want {
		t.Errorf("hit_bytes %d; want %d", st.HitBytes, want)
	}
}

// TestPartsCombined: parts of one representation are combined, so a
// range across two of them is a hit; parts that come to cover the whole
// become the whole response, which then answers a plain GET.
func TestPartsCombined(t *testing.T) {
	body := newBody(30_000, 4)
	g, o := newPartsGateway(t, body)
	getRange(t, g, body, "bytes=0-9999", 0, 9999)
	getRange(t, g, body, "bytes=10000-19999", 10000, 19999)
	if res := getRange(t, g, body, "bytes=5000-14999", 5000, 14999); !isHit(res) {
		t.Fatalf("range across two adjoining parts: Cache-Status %q; want a hit", res.header.Get("Cache-Status"))
	}
	// A whole request with only parts stored goes forward, whole.
	before := len(o.seen())
	res := g.get(t, "/file")
	if res.status != http.StatusOK || res.body != string(body) || isHit(res) {
		t.Fatalf("whole request over parts: status %d, hit %v", res.status, isHit(res))
	}
	if got := o.seen()[before:]; len(got) != 1 || got[0] != "" {
		t.Fatalf("whole request: origin saw ranges %q; want one request without Range", got)
	}

	// A second URL: overlapping parts complete the representation.
	g2, o2 := newPartsGateway(t, body)
	getRange(t, g2, body, "bytes=0-12000", 0, 12000)
	getRange(t, g2, body, "bytes=20000-", 20000, len(body)-1)
	getRange(t, g2, body, "bytes=11000-20500", 11000, 20500)
	n := len(o2.seen())
	res = g2.get(t, "/file")
	if res.status != http.StatusOK || res.body != string(body) || !isHit(res) {
		t.Fatalf("whole from combined parts: status %d, %d bytes, Cache-Status %q", res.status, len(res.body), res.header.Get("Cache-Status"))
	}
	if res.header.Get("Content-Length") != strconv.Itoa(len(body)) || res.header.Get("Content-Range") != "" {
		t.Errorf("whole from parts: header %v", res.header)
	}
	if res := getRange(t, g2, body, "bytes=-500", len(body)-500, len(body)-1); !isHit(res) {
		t.Errorf("suffix range of the whole: Cache-Status %q", res.header.Get("Cache-Status"))
	}
	if got := len(o2.seen()); got != n {
		t.Errorf("origin asked %d more times; want 0", got-n)
	}
}

// TestPartsRandomRanges: random ranges are byte-exact whether answered
// from parts or forwarded, and a range is forwarded only when no stored
// part covers it.
func TestPartsRandomRanges(t *testing.T) {
	body := newBody(200_000, 5)
	g, o := newPartsGateway(t, body)
	rnd := rand.New(rand.NewPCG(9, 9))
	type iv struct{ a, b int }
	var have []iv // what the origin sent, by the test's own bookkeeping
	covered := func(a, b int) bool {
		// Adjoining and overlapping parts combine, so coverage is by the
		// union of what was fetched.
		lo := a
		for changed := true; changed; {
			changed = false
			for _, p := range have {
				if p.a <= lo && lo <= p.b+1 && p.b+1 > lo {
					lo, changed = p.b+1, true
				}
			}
		}
		return lo > b
	}
	hits := 0
	for i := range 60 {
		a := rnd.IntN(len(body))
		b := min(a+rnd.IntN(20_000), len(body)-1)
		want := covered(a, b)
		before := len(o.seen())
		res := getRange(t, g, body, fmt.Sprintf("bytes=%d-%d", a, b), a, b)
		fetched := len(o.seen()) > before
		if fetched == want {
			t.Fatalf("request %d bytes=%d-%d: fetched %v; covered %v", i, a, b, fetched, want)
		}
		if fetched {
			have = append(have, iv{a, b})
		} else {
			hits++
			if !isHit(res) {
				t.Fatalf("request %d: Cache-Status %q", i, res.header.Get("Cache-Status"))
			}
		}
	}
	if hits == 0 {
		t.Fatal("no range was answered from parts")
	}
}

// TestPartsNewRepresentation: a part with another strong validator
// replaces the parts stored before it rather than being combined.
func TestPartsNewRepresentation(t *testing.T) {
	body := newBody(20_000, 6)
	g, o := newPartsGateway(t, body)
	getRange(t, g, body, "bytes=0-9999", 0, 9999)
	body2 := newBody(20_000, 7)
	o.set(body2, `"p2"`)
	getRange(t, g, body2, "bytes=10000-19999", 10000, 19999)
	n := len(o.seen())
	// The old part is gone: its range is forwarded, and answered new.
	res := getRange(t, g, body2, "bytes=0-99", 0, 99)
	if isHit(res) || len(o.seen()) != n+1 {
		t.Fatalf("old representation's range: Cache-Status %q", res.header.Get("Cache-Status"))
	}
	if res := getRange(t, g, body2, "bytes=10000-10099", 10000, 10099); !isHit(res) || res.header.Get("ETag") != `"p2"` {
		t.Fatalf("new part: Cache-Status %q, ETag %q", res.header.Get("Cache-Status"), res.header.Get("ETag"))
	}
	// Never spliced: a range across the two is not served from them.
	res = getRange(t, g, body2, "bytes=50-10050", 50, 10050)
	if isHit(res) && len(o.seen()) == n+1 {
		t.Fatal("bytes of two representations were combined")
	}
}

// TestPartsNotKept: 206 answers that cannot be parts are not stored,
// and say why.
func TestPartsNotKept(t *testing.T) {
	body := newBody(10_000, 8)
	for _, tc := range []struct {
		name, etag, cc, detail string
	}{
		{"weak validator", `W/"w"`, "max-age=60", "partial"},
		{"no validator", "", "max-age=60", "partial"},
		{"private", `"s"`, "private, max-age=60", "private"},
		{"no-store", `"s"`, "no-store", "no-store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, gwConfig{})
			calls := 0
			g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
				calls++
				h := w.Header()
				h.Set("Cache-Control", tc.cc)
				if tc.etag != "" {
					h.Set("ETag", tc.etag)
				}
				http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(body)))
			})
			for range 2 {
				res := getRange(t, g, body, "bytes=10-19", 10, 19)
				if cs := res.header.Get("Cache-Status"); isHit(res) || !strings.Contains(cs, `detail="`+tc.detail+`"`) {
					t.Fatalf("Cache-Status %q; want a miss with detail %q", cs, tc.detail)
				}
			}
			if calls != 2 {
				t.Fatalf("origin called %d times; want 2", calls)
			}
			if got := g.stats(t, "?route=r").NotStored[tc.detail]; got != 2 {
				t.Errorf("not_stored[%s] = %d; want 2", tc.detail, got)
			}
		})
	}
}

// TestPartsRequestRules: If-Range, several ranges, other preconditions,
// no-store and stale parts go forward; only-if-cached is answered from a
// covering part; a purge of the URL removes the parts.
func TestPartsRequestRules(t *testing.T) {
	body := newBody(10_000, 10)
	g, o := newPartsGateway(t, body)
	getRange(t, g, body, "bytes=0-4999", 0, 4999)
	forwarded := func(what string, hdr ...string) {
		t.Helper()
		n := len(o.seen())
		res := g.get(t, "/file", hdr...)
		if isHit(res) || len(o.seen()) != n+1 {
			t.Errorf("%s: Cache-Status %q, origin asked %d times; want it forwarded", what, res.header.Get("Cache-Status"), len(o.seen())-n)
		}
	}
	if res := getRange(t, g, body, "bytes=0-99", 0, 99, "If-Range", `"p1"`); !isHit(res) {
		t.Errorf("If-Range with the stored ETag: Cache-Status %q; want a hit", res.header.Get("Cache-Status"))
	}
	forwarded("two ranges", "Range", "bytes=0-9,20-29")
	forwarded("If-None-Match", "Range", "bytes=0-99", "If-None-Match", `"x"`)
	forwarded("request no-store", "Range", "bytes=0-99", "Cache-Control", "no-store")
	if res := g.get(t, "/file", "Range", "bytes=100-199", "Cache-Control", "only-if-cached"); res.status != http.StatusPartialContent || !isHit(res) {
		t.Errorf("only-if-cached, covered: status %d", res.status)
	}
	if res := g.get(t, "/file", "Range", "bytes=6000-6099", "Cache-Control", "only-if-cached"); res.status != http.StatusGatewayTimeout {
		t.Errorf("only-if-cached, not covered: status %d; want 504", res.status)
	}

	g.clk.Advance(2 * time.Hour) // past max-age=3600
	forwarded("a stale part", "Range", "bytes=0-99")
	if res := getRange(t, g, body, "bytes=0-99", 0, 99); !isHit(res) {
		t.Errorf("after the refetch: Cache-Status %q; want a hit", res.header.Get("Cache-Status"))
	}

	if n := g.purge(t, "url", g.url("/file")); n == 0 {
		t.Error("purge of the URL removed nothing")
	}
	forwarded("after a purge", "Range", "bytes=0-99")

	// An If-Range that does not match the part: forwarded, and the
	// origin's whole 200 is then stored as the whole response.
	forwarded("If-Range with a date", "Range", "bytes=0-99", "If-Range", httpDate(0))
	g.purge(t, "url", g.url("/file"))
	getRange(t, g, body, "bytes=0-4999", 0, 4999)
	forwarded("If-Range with another ETag", "Range", "bytes=0-99", "If-Range", `"old"`)
	if res := g.get(t, "/file"); res.status != http.StatusOK || !isHit(res) {
		t.Errorf("after the whole 200: status %d, Cache-Status %q; want a hit", res.status, res.header.Get("Cache-Status"))
	}
}

// TestPartsLimit: parts larger than max_object_size are not stored, and
// a new part that would take the combined parts past it replaces them.
func TestPartsLimit(t *testing.T) {
	body := newBody(50_000, 11)
	g := newGateway(t, gwConfig{cache: cache.Options{MaxObjectSize: 20_000}})
	o := &rangeOrigin{body: body, etag: `"l"`}
	g.origin.handle(o.serve)
	res := getRange(t, g, body, "bytes=0-29999", 0, 29999)
	if !strings.Contains(res.header.Get("Cache-Status"), `detail="too-large"`) {
		t.Errorf("part over the limit: Cache-Status %q", res.header.Get("Cache-Status"))
	}
	getRange(t, g, body, "bytes=0-14999", 0, 14999)
	getRange(t, g, body, "bytes=30000-44999", 30000, 44999)
	n := len(o.seen())
	if res := getRange(t, g, body, "bytes=30000-30099", 30000, 30099); !isHit(res) {
		t.Errorf("newest part: Cache-Status %q; want a hit", res.header.Get("Cache-Status"))
	}
	if res := getRange(t, g, body, "bytes=0-99", 0, 99); isHit(res) || len(o.seen()) != n+1 {
		t.Errorf("the replaced part: Cache-Status %q; want it forwarded", res.header.Get("Cache-Status"))
	}
}
