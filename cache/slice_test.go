package cache_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gateway/cache"
)

const testSlice = 64 << 10

// rangeOrigin serves one large deterministic representation with Range
// support (http.ServeContent), and records the Range of every request.
type rangeOrigin struct {
	mu     sync.Mutex
	body   []byte
	etag   string
	ranges []string
	// etagPerRequest gives every response a new validator: a
	// representation that changes all the time.
	etagPerRequest bool
	// noRange answers every request whole with a 200.
	noRange bool
}

func newBody(n int, seed uint64) []byte {
	b := make([]byte, n)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rnd.UintN(256))
	}
	return b
}

func (o *rangeOrigin) set(body []byte, etag string) {
	o.mu.Lock()
	o.body, o.etag = body, etag
	o.mu.Unlock()
}

func (o *rangeOrigin) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges...)
}

func (o *rangeOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.ranges = append(o.ranges, r.Header.Get("Range"))
	body, etag := o.body, o.etag
	if o.etagPerRequest {
		etag = fmt.Sprintf(`"v%d"`, len(o.ranges))
	}
	noRange := o.noRange
	o.mu.Unlock()
	h := w.Header()
	h.Set("Cache-Control", "max-age=3600")
	h.Set("ETag", etag)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Last-Modified", httpDate(-time.Hour))
	if noRange {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func newSliceGateway(t *testing.T, body []byte) (*gateway, *rangeOrigin) {
	t.Helper()
	return newSliceGatewayWith(t, body, cache.RouteOptions{Slice: testSlice})
}

func newSliceGatewayWith(t *testing.T, body []byte, ro cache.RouteOptions) (*gateway, *rangeOrigin) {
	t.Helper()
	g := newGateway(t, gwConfig{route: ro})
	o := &rangeOrigin{body: body, etag: `"a"`}
	g.origin.handle(o.serve)
	return g, o
}

func sliceRange(idx int) string {
	return fmt.Sprintf("bytes=%d-%d", idx*testSlice, (idx+1)*testSlice-1)
}

// TestSliceRandomRanges: each range is served byte-exact from the slices
// it covers; the origin is asked for exactly the slices not yet stored,
// and a range already covered is answered without it.
func TestSliceRandomRanges(t *testing.T) {
	body := newBody(17*testSlice+12345, 1)
	g, o := newSliceGateway(t, body)
	rnd := rand.New(rand.NewPCG(7, 7))
	stored := map[int]bool{}
	for i := range 30 {
		a := rnd.IntN(len(body))
		b := min(a+rnd.IntN(3*testSlice), len(body)-1)
		before := len(o.seen())
		var want []string
		for idx := a / testSlice; idx <= b/testSlice; idx++ {
			if !stored[idx] {
				want = append(want, sliceRange(idx))
				stored[idx] = true
			}
		}
		res := g.get(t, "/big", "Range", fmt.Sprintf("bytes=%d-%d", a, b))
		if res.status != http.StatusPartialContent {
			t.Fatalf("request %d: status %d; want 206", i, res.status)
		}
		if res.body != string(body[a:b+1]) {
			t.Fatalf("request %d bytes=%d-%d: body differs (%d bytes)", i, a, b, len(res.body))
		}
		if got, want := res.header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", a, b, len(body)); got != want {
			t.Errorf("request %d: Content-Range %q; want %q", i, got, want)
		}
		if got := res.header.Get("Content-Length"); got != strconv.Itoa(b-a+1) {
			t.Errorf("request %d: Content-Length %s; want %d", i, got, b-a+1)
		}
		if res.header.Get("ETag") != `"a"` || res.header.Get("Last-Modified") == "" {
			t.Errorf("request %d: validators %v", i, res.header)
		}
		got := o.seen()[before:]
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("request %d bytes=%d-%d: origin asked for %q; want %q", i, a, b, got, want)
		}
		hit := strings.Contains(res.header.Get("Cache-Status"), "hit")
		if hit != (len(want) == 0) {
			t.Errorf("request %d: Cache-Status %q with %d slices fetched", i, res.header.Get("Cache-Status"), len(want))
		}
	}
	// A suffix range, and one that runs past the end.
	before := len(o.seen())
	res := g.get(t, "/big", "Range", "bytes=-100")
	if res.status != http.StatusPartialContent || res.body != string(body[len(body)-100:]) {
		t.Errorf("suffix range: status %d, %d bytes", res.status, len(res.body))
	}
	res = g.get(t, "/big", "Range", fmt.Sprintf("bytes=%d-", len(body)-10))
	if res.status != http.StatusPartialContent || res.body != string(body[len(body)-10:]) {
		t.Errorf("open range: status %d, %d bytes", res.status, len(res.body))
	}
	res = g.get(t, "/big", "Range", fmt.Sprintf("bytes=%d-", len(body)))
	if res.status != http.StatusRequestedRangeNotSatisfiable || res.header.Get("Content-Range") != "bytes */"+strconv.Itoa(len(body)) {
		t.Errorf("range past the end: status %d, Content-Range %q", res.status, res.header.Get("Content-Range"))
	}
	// Slice 0 (for the suffix range's representation length) and the
	// last one may not have been stored yet: at most those two.
	if n := len(o.seen()) - before; n > 2 {
		t.Errorf("origin requests for the tail: %d; want at most 2", n)
	}
}

// TestSliceWhole: a request without Range is answered 200 with the whole
// representation, assembled from its slices; then it is a hit.
func TestSliceWhole(t *testing.T) {
	body := newBody(5*testSlice+7, 2)
	g, o := newSliceGateway(t, body)
	for i, want := range []int{6, 6} {
		res := g.get(t, "/big")
		if res.status != http.StatusOK || res.body != string(body) {
			t.Fatalf("request %d: status %d, %d bytes; want 200 and the body", i, res.status, len(res.body))
		}
		if res.header.Get("Content-Length") != strconv.Itoa(len(body)) || res.header.Get("Content-Range") != "" || res.header.Get("ETag") != `"a"` {
			t.Errorf("request %d: header %v", i, res.header)
		}
		if got := len(o.seen()); got != want {
			t.Errorf("after request %d: origin requests %d; want %d", i, got, want)
		}
	}
	res := g.do(t, http.MethodHead, "/big", "Range", "bytes=10-19")
	if res.status != http.StatusPartialContent || res.body != "" || res.header.Get("Content-Length") != "10" {
		t.Errorf("HEAD: status %d, body %d bytes, header %v", res.status, len(res.body), res.header)
	}
	if got := len(o.seen()); got != 6 {
		t.Errorf("HEAD went to the origin: %d requests", got)
	}
}

// TestSliceETagChange: when the representation changed since slices were
// stored, the old slices are dropped and the request is answered from
// the new representation; when it changes with every request, 502.
func TestSliceETagChange(t *testing.T) {
	old := newBody(4*testSlice, 3)
	g, o := newSliceGateway(t, old)
	if res := g.get(t, "/big", "Range", "bytes=0-9"); res.body != string(old[:10]) {
		t.Fatalf("first range: %d bytes", len(res.body))
	}
	fresh := newBody(4*testSlice, 4)
	o.set(fresh, `"b"`)
	res := g.get(t, "/big", "Range", fmt.Sprintf("bytes=5-%d", 2*testSlice+5))
	if res.status != http.StatusPartialContent || res.body != string(fresh[5:2*testSlice+6]) || res.header.Get("ETag") != `"b"` {
		t.Fatalf("after the change: status %d, ETag %q, body of the new representation %v", res.status, res.header.Get("ETag"), res.body == string(fresh[5:2*testSlice+6]))
	}
	before := len(o.seen())
	if res := g.get(t, "/big", "Range", "bytes=0-9"); res.body != string(fresh[:10]) || len(o.seen()) != before {
		t.Errorf("slice 0 after the change: new body %v, origin requests %d", res.body == string(fresh[:10]), len(o.seen())-before)
	}

	o.mu.Lock()
	o.etagPerRequest = true
	o.mu.Unlock()
	res = g.get(t, "/other", "Range", fmt.Sprintf("bytes=0-%d", testSlice))
	if res.status != http.StatusBadGateway {
		t.Errorf("ever-changing representation: status %d; want 502", res.status)
	}
}

// TestSliceOriginIgnoresRange: an origin answering 200 whole is streamed
// through, and nothing of it is stored.
func TestSliceOriginIgnoresRange(t *testing.T) {
	body := newBody(3*testSlice, 5)
	g, o := newSliceGateway(t, body)
	o.mu.Lock()
	o.noRange = true
	o.mu.Unlock()
	for i := range 2 {
		res := g.get(t, "/big", "Range", "bytes=0-9")
		if res.status != http.StatusOK || res.body != string(body) {
			t.Fatalf("request %d: status %d, %d bytes; want the whole 200", i, res.status, len(res.body))
		}
	}
	if got := len(o.seen()); got != 2 {
		t.Errorf("origin requests: %d; want 2 (nothing stored)", got)
	}
}

// TestSliceChangeMidStream: a representation that changes once the
// response has begun cuts it short (its status line promised the old
// one), and its stored slices are dropped, so the next request is
// answered from the new representation.
func TestSliceChangeMidStream(t *testing.T) {
	old, fresh := newBody(4*testSlice, 6), newBody(4*testSlice, 7)
	g, o := newSliceGateway(t, old)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		// The third slice request onwards sees the new representation:
		// the first two are fetched before the status line goes out.
		if len(o.seen()) == 2 {
			o.set(fresh, `"b"`)
		}
		o.serve(w, r)
	})
	res, err := g.send(g.newRequest(t.Context(), t, http.MethodGet, "/big"))
	if err == nil && res.body == string(old) {
		t.Fatalf("the old representation was served whole after it changed")
	}
	res = g.get(t, "/big")
	if res.status != http.StatusOK || res.body != string(fresh) || res.header.Get("ETag") != `"b"` {
		t.Errorf("next request: status %d, ETag %q, new body %v", res.status, res.header.Get("ETag"), res.body == string(fresh))
	}
}

// TestSliceInvalidated: an unsafe request to the URL removes its slices
// (they are stored under its URL), so the next read goes to the origin.
func TestSliceInvalidated(t *testing.T) {
	body := newBody(2*testSlice, 8)
	g, o := newSliceGateway(t, body)
	g.get(t, "/big")
	n := len(o.seen())
	g.do(t, http.MethodPost, "/big")
	before := len(o.seen())
	if res := g.get(t, "/big"); res.body != string(body) || len(o.seen())-before != n {
		t.Errorf("after POST: origin requests %d; want %d", len(o.seen())-before, n)
	}
}

// TestSliceNoValidator: slices of a file without a strong validator are
// never combined; the request takes the ordinary path, as sent.
func TestSliceNoValidator(t *testing.T) {
	body := newBody(3*testSlice, 9)
	g, o := newSliceGateway(t, body)
	o.set(body, `W/"weak"`)
	res := g.get(t, "/big", "Range", fmt.Sprintf("bytes=10-%d", testSlice+10))
	if res.status != http.StatusPartialContent || res.body != string(body[10:testSlice+11]) {
		t.Errorf("status %d, %d bytes", res.status, len(res.body))
	}
	if got := o.seen(); len(got) != 2 || got[0] != sliceRange(0) || got[1] != fmt.Sprintf("bytes=10-%d", testSlice+10) {
		t.Errorf("origin ranges %q; want slice 0, then the client's range", got)
	}
}

// TestSliceCoalesced: concurrent requests for a range of a cold object
// share the fetch of each slice: the origin is asked for each once.
func TestSliceCoalesced(t *testing.T) {
	body := newBody(3*testSlice, 12)
	g, o := newSliceGateway(t, body)
	gate := newGate(t)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		gate.wait(r)
		o.serve(w, r)
	})
	const n = 8
	rng := fmt.Sprintf("bytes=%d-%d", testSlice-100, testSlice+100) // slices 0 and 1
	errs := make(chan error, n)
	for range n {
		go func() {
			res, err := g.send(g.newRequest(t.Context(), t, http.MethodGet, "/big", "Range", rng))
			switch {
			case err != nil:
				errs <- err
			case res.status != http.StatusPartialContent || res.body != string(body[testSlice-100:testSlice+101]):
				errs <- fmt.Errorf("status %d, %d bytes", res.status, len(res.body))
			default:
				errs <- nil
			}
		}()
	}
	g.waitEntered(t, n)
	gate.release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	for _, r := range o.seen() {
		counts[r]++
	}
	for _, idx := range []int{0, 1} {
		if counts[sliceRange(idx)] != 1 {
			t.Errorf("slice %d fetched %d times; want 1 (origin saw %q)", idx, counts[sliceRange(idx)], o.seen())
		}
	}
	if st := g.stats(t, "?route=r"); st.Coalesced == 0 {
		t.Error("no request was counted as coalesced")
	}
}

// TestSliceStaleOnOutage: stored slices past their freshness answer for
// an origin that fails (503, or refuses the connection) within the
// route's grace, with Cache-Status fwd=stale and an Age; past the grace,
// or with must-revalidate, the failure is answered as such.
func TestSliceStaleOnOutage(t *testing.T) {
	body := newBody(2*testSlice, 13)
	g, o := newSliceGatewayWith(t, body, cache.RouteOptions{Slice: testSlice, Grace: 10 * time.Minute})
	g.clk.Advance(5 * time.Second)
	res := g.get(t, "/big", "Range", "bytes=0-99")
	if res.status != http.StatusPartialContent {
		t.Fatalf("fill: status %d", res.status)
	}
	g.clk.Advance(3 * time.Second)
	res = g.get(t, "/big", "Range", "bytes=0-99")
	if !strings.Contains(res.header.Get("Cache-Status"), "hit") || res.header.Get("Age") != "3" {
		t.Fatalf("hit: Cache-Status %q, Age %q; want a hit of age 3", res.header.Get("Cache-Status"), res.header.Get("Age"))
	}

	g.clk.Advance(2 * time.Hour) // past max-age=3600 and the grace
	failing := func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }
	g.origin.handle(failing)
	res = g.get(t, "/big", "Range", "bytes=0-99")
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("past the grace: status %d; want the origin's 503", res.status)
	}

	// Refill, then fail within the grace.
	g.origin.handle(o.serve)
	g.purge(t, "url", g.url("/big"))
	if res := g.get(t, "/big", "Range", "bytes=0-99"); res.status != http.StatusPartialContent {
		t.Fatalf("refill: status %d", res.status)
	}
	g.clk.Advance(time.Hour + time.Minute) // stale by a minute
	g.origin.handle(failing)
	res = g.get(t, "/big", "Range", "bytes=0-99")
	if res.status != http.StatusPartialContent || res.body != string(body[:100]) {
		t.Fatalf("503 within the grace: status %d, %d bytes; want the stale slice", res.status, len(res.body))
	}
	if cs := res.header.Get("Cache-Status"); !strings.Contains(cs, "fwd=stale") || !strings.Contains(cs, `detail="grace"`) {
		t.Errorf("stale slice: Cache-Status %q", cs)
	}
	if res.header.Get("Age") == "" {
		t.Error("stale slice: no Age")
	}
	// A connection refused: the origin is gone.
	g.origin.Close()
	res = g.get(t, "/big", "Range", "bytes=10-19")
	if res.status != http.StatusPartialContent || res.body != string(body[10:20]) {
		t.Errorf("origin down within the grace: status %d; want the stale slice", res.status)
	}
}

// TestSliceStaleForbidden: a slice whose response says must-revalidate
// is never served stale for a failing origin.
func TestSliceStaleForbidden(t *testing.T) {
	body := newBody(testSlice, 14)
	g, o := newSliceGatewayWith(t, body, cache.RouteOptions{Slice: testSlice, Grace: 10 * time.Minute})
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60, must-revalidate")
		o.serve(&ccKeeper{w}, r)
	})
	if res := g.get(t, "/big", "Range", "bytes=0-9"); res.status != http.StatusPartialContent {
		t.Fatalf("fill: status %d", res.status)
	}
	g.clk.Advance(2 * time.Minute)
	g.origin.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	if res := g.get(t, "/big", "Range", "bytes=0-9"); res.status == http.StatusPartialContent {
		t.Errorf("must-revalidate slice served stale: Cache-Status %q", res.header.Get("Cache-Status"))
	}
}

// ccKeeper keeps the Cache-Control its handler set before rangeOrigin's
// own.
type ccKeeper struct{ http.ResponseWriter }

func (k *ccKeeper) WriteHeader(code int) {
	k.ResponseWriter.Header().Set("Cache-Control", "max-age=60, must-revalidate")
	k.ResponseWriter.WriteHeader(code)
}

func (k *ccKeeper) Write(p []byte) (int, error) { return k.ResponseWriter.Write(p) }
