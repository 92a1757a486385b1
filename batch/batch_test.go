package batch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBatchMixed runs one batch holding a cache hit, a miss, an
// uncacheable request, a proxy error, a per-item timeout, a route that is
// not batchable, an unknown route and a non-JSON body: each item gets its
// own status, in request order, and the batch answers 200.
func TestBatchMixed(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{ItemTimeout: 300 * time.Millisecond})
	if status, _, _ := g.get(t, "/cached/a"); status != http.StatusOK {
		t.Fatalf("warming: got %d", status)
	}
	start := time.Now()
	res := g.run(t, `{"requests": [
		{"id": "hit", "path": "/cached/a"},
		{"id": "miss", "method": "GET", "path": "/cached/b"},
		{"id": "pass", "path": "/echo/x?q=1"},
		{"id": "down", "path": "/dead/x"},
		{"id": "slow", "path": "/slow"},
		{"id": "private", "path": "/private/x"},
		{"id": "unknown", "path": "/nowhere"},
		{"id": "text", "path": "/text"},
		{"id": "head", "method": "head", "path": "/cached/a"}
	]}`)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("batch took %v; want about the item timeout (300ms)", d)
	}
	want := []struct {
		id     string
		status int
	}{{"hit", 200}, {"miss", 200}, {"pass", 200}, {"down", 502}, {"slow", 504}, {"private", 403}, {"unknown", 404}, {"text", 200}, {"head", 200}}
	if len(res.Responses) != len(want) {
		t.Fatalf("got %d responses; want %d", len(res.Responses), len(want))
	}
	for i, w := range want {
		r := res.Responses[i]
		if r.ID != w.id || r.Status != w.status {
			t.Errorf("response %d: got %s %d; want %s %d", i, r.ID, r.Status, w.id, w.status)
		}
	}
	r := res.Responses
	if cs := r[0].Headers["Cache-Status"]; !strings.Contains(cs, "hit") {
		t.Errorf("hit: Cache-Status %q; want a hit", cs)
	}
	if cs := r[1].Headers["Cache-Status"]; !strings.Contains(cs, "stored") {
		t.Errorf("miss: Cache-Status %q; want stored", cs)
	}
	jsonEqual(t, "hit body", r[0].Body, `{"path": "/cached/a"}`)
	jsonEqual(t, "miss body", r[1].Body, `{"path": "/cached/b"}`)
	var echo struct{ Path, Query string }
	if err := json.Unmarshal(r[2].Body, &echo); err != nil || echo.Path != "/echo/x" || echo.Query != "q=1" {
		t.Errorf("pass: got %s (%v); want the echo of /echo/x?q=1", r[2].Body, err)
	}
	if r[3].BodyBase64 == nil {
		t.Errorf("down: got body %s; want the proxy's plain-text error as body_base64", r[3].Body)
	}
	jsonEqual(t, "slow body", r[4].Body, `{"error": "timeout"}`)
	jsonEqual(t, "private body", r[5].Body, `{"error": "route not batchable"}`)
	jsonEqual(t, "unknown body", r[6].Body, `{"error": "no route"}`)
	if r[7].BodyBase64 == nil || len(r[7].Body) != 0 {
		t.Errorf("text: got body %s, body_base64 %v; want body_base64 only", r[7].Body, r[7].BodyBase64)
	} else if b, _ := base64.StdEncoding.DecodeString(*r[7].BodyBase64); string(b) != "hello\n" {
		t.Errorf("text: got %q; want hello", b)
	}
	if r[7].Headers["Content-Type"] != "text/plain; charset=utf-8" {
		t.Errorf("text: Content-Type %q", r[7].Headers["Content-Type"])
	}
	if r[8].Body != nil || r[8].BodyBase64 != nil {
		t.Errorf("head: got a body; want none")
	}
	if n := g.origin.count("/cached/a"); n != 1 {
		t.Errorf("origin saw /cached/a %d times; want 1 (the warm-up)", n)
	}
	if n := g.origin.count("/private/x"); n != 0 {
		t.Errorf("origin saw the non-batchable route's request")
	}
	// The origin saw the slow request cancelled, not left to run.
	if status, _, _ := g.get(t, "/cached/b"); status != http.StatusOK || g.origin.count("/cached/b") != 1 {
		t.Errorf("the batch's miss was not stored: origin saw /cached/b %d times", g.origin.count("/cached/b"))
	}
}

// TestBatchOfCachedGETsCostsNoOriginRequest: ten cached GETs in a batch
// are all answered by the cache.
func TestBatchOfCachedGETsCostsNoOriginRequest(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	var paths []string
	for i := range 10 {
		p := fmt.Sprintf("/cached/%d", i)
		if status, _, _ := g.get(t, p); status != http.StatusOK {
			t.Fatalf("warming %s: got %d", p, status)
		}
		paths = append(paths, p)
	}
	before := g.origin.requests.Load()
	res := g.run(t, items(paths...))
	if n := g.origin.requests.Load() - before; n != 0 {
		t.Errorf("the batch cost %d origin requests; want 0", n)
	}
	for i, r := range res.Responses {
		if r.ID != fmt.Sprintf("i%d", i) || r.Status != 200 || !strings.Contains(r.Headers["Cache-Status"], "hit") {
			t.Errorf("response %d: got %s %d %q; want i%d 200 hit", i, r.ID, r.Status, r.Headers["Cache-Status"], i)
		}
		jsonEqual(t, r.ID, r.Body, fmt.Sprintf(`{"path": "/cached/%d"}`, i))
	}

	// Ten GETs of one uncached URL in one batch are collapsed into one
	// origin request by the cache, as ten clients' would be.
	before = g.origin.requests.Load()
	var same []string
	for range 10 {
		same = append(same, "/cached/new")
	}
	res = g.run(t, items(same...))
	if n := g.origin.requests.Load() - before; n != 1 {
		t.Errorf("ten GETs of one new URL cost %d origin requests; want 1", n)
	}
	for i, r := range res.Responses {
		if r.Status != 200 {
			t.Errorf("response %d: got %d; want 200", i, r.Status)
		}
	}
}

// TestBatchRejects: a batch that is malformed or breaks a rule is
// refused as a whole, with a JSON error naming the item, and nothing
// reaches the origin.
func TestBatchRejects(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{MaxItems: 3, MaxBodySize: 2048})
	item := func(extra string) string {
		return `{"requests": [{"id": "ok", "path": "/echo/a"}, {"id": "x", "path": "/echo/b"` + extra + `}]}`
	}
	one := 1
	cases := []struct {
		name   string
		body   string
		status int
		err    string // substring of the error
		item   *int
		id     string
	}{
		{"malformed JSON", `{"requests": [`, 400, "malformed batch: ", nil, ""},
		{"not an object", `[1, 2]`, 400, "malformed batch: want an object, got array", nil, ""},
		{"trailing data", `{"requests": [{"id": "a", "path": "/echo/a"}]} {}`, 400, "data after the JSON value", nil, ""},
		{"empty body", ``, 400, "empty body", nil, ""},
		{"unknown top-level field", `{"requests": [], "mode": "fast"}`, 400, `unknown field "mode"`, nil, ""},
		{"no requests", `{"requests": []}`, 400, "no requests", nil, ""},
		{"requests not a list", `{"requests": {}}`, 400, "field requests: got object, want an array", nil, ""},
		{"too many items", items("/echo/1", "/echo/2", "/echo/3", "/echo/4"), 413, "too many requests: 4 (at most 3)", nil, ""},
		{"unknown item field", item(`, "header": {"A": "b"}`), 400, `unknown field "header"`, &one, "x"},
		{"id not a string", `{"requests": [{"id": "ok", "path": "/a"}, {"id": 7, "path": "/b"}]}`, 400, "field id: got number, want a string", &one, ""},
		{"missing id", `{"requests": [{"id": "ok", "path": "/a"}, {"path": "/b"}]}`, 400, "missing id", &one, ""},
		{"missing path", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x"}]}`, 400, "missing path", &one, "x"},
		{"relative path", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "echo/b"}]}`, 400, `path "echo/b" must start with "/"`, &one, "x"},
		{"absolute URL", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "http://evil/"}]}`, 400, `must start with "/"`, &one, "x"},
		{"fragment", item(`, "path": "/echo/b#f"`), 400, "", &one, "x"},
		{"space in path", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "/a b"}]}`, 400, "spaces", &one, "x"},
		{"duplicate id", `{"requests": [{"id": "a", "path": "/a"}, {"id": "a", "path": "/b"}]}`, 400, "duplicate id (also item 0)", &one, "a"},
		{"bad method", item(`, "method": "TRACE"`), 400, `method "TRACE" not allowed`, &one, "x"},
		{"method with space", item(`, "method": "GET X"`), 400, "not allowed", &one, "x"},
		{"nested batch", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "/_batch"}]}`, 400, "a batch may not contain a batch", &one, "x"},
		{"nested batch with dots", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "/echo/../_batch?x=1"}]}`, 400, "a batch may not contain a batch", &one, "x"},
		{"nested batch escaped", `{"requests": [{"id": "ok", "path": "/a"}, {"id": "x", "path": "/%5Fbatch"}]}`, 400, "a batch may not contain a batch", &one, "x"},
		{"body and body_base64", item(`, "body": {"a": 1}, "body_base64": "eA=="`), 400, "body and body_base64 are exclusive", &one, "x"},
		{"bad base64", item(`, "body_base64": "!!"`), 400, "body_base64: ", &one, "x"},
		{"bad host", item(`, "host": "a/b"`), 400, `host "a/b"`, &one, "x"},
		{"bad header name", item(`, "headers": {"X Y": "1"}`), 400, `invalid header name "X Y"`, &one, "x"},
		{"bad header value", item(`, "headers": {"X-Y": "a\nb"}`), 400, "header X-Y: invalid value", &one, "x"},
		{"header given twice", item(`, "headers": {"x-y": "1", "X-Y": "2"}`), 400, "given twice", &one, "x"},
		{"header not a string", item(`, "headers": {"X-Y": 1}`), 400, "got number, want a string", &one, "x"},
	}
	for _, h := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "TE", "Trailer", "Proxy-Authorization", "Proxy-Connection"} {
		cases = append(cases, struct {
			name   string
			body   string
			status int
			err    string
			item   *int
			id     string
		}{"hop-by-hop " + h, item(`, "headers": {"` + h + `": "x"}`), 400, "header " + h + " is hop-by-hop", &one, "x"})
	}
	for _, h := range []string{"X-Forwarded-For", "x-forwarded-proto", "X-Forwarded-Host", "Forwarded", "Via", "X-Request-Id", "Host", "Content-Length"} {
		cases = append(cases, struct {
			name   string
			body   string
			status int
			err    string
			item   *int
			id     string
		}{"gateway-owned " + h, item(`, "headers": {"` + h + `": "1"}`), 400, "header " + h + " is set by the gateway", &one, "x"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b, h := g.post(t, tc.body)
			if status != tc.status {
				t.Fatalf("got %d %s; want %d", status, b, tc.status)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			var e struct {
				Error string `json:"error"`
				Item  *int   `json:"item"`
				ID    string `json:"id"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("got %s: %v", b, err)
			}
			if !strings.Contains(e.Error, tc.err) || e.Error == "" {
				t.Errorf("got error %q; want it to contain %q", e.Error, tc.err)
			}
			if (e.Item == nil) != (tc.item == nil) || e.Item != nil && *e.Item != *tc.item || e.ID != tc.id {
				t.Errorf("got item %v, id %q; want %v, %q (%s)", e.Item, e.ID, tc.item, tc.id, b)
			}
		})
	}

	// A body over the limit, with and without Content-Length.
	big := `{"requests": [{"id": "a", "path": "/echo/` + strings.Repeat("x", 3000) + `"}]}`
	if status, b, _ := g.post(t, big); status != 413 || !strings.Contains(string(b), "batch body over 2048 bytes") {
		t.Errorf("oversize body: got %d %s; want 413", status, b)
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/_batch", struct{ *strings.Reader }{strings.NewReader(big)})
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("oversize chunked body: got %d; want 413", resp.StatusCode)
	}

	// Only POST, only JSON.
	if status, _, h := g.get(t, "/_batch"); status != 405 || h.Get("Allow") != "POST" {
		t.Errorf("GET /_batch: got %d, Allow %q; want 405, POST", status, h.Get("Allow"))
	}
	resp, err = g.client.Post(g.url+"/_batch", "text/plain", strings.NewReader(items("/echo/a")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain batch: got %d; want 415", resp.StatusCode)
	}
	if n := g.origin.requests.Load(); n != 0 {
		t.Errorf("refused batches cost %d origin requests; want 0", n)
	}
}

// TestBatchHeaders: inherited headers reach the origin with the outer
// request's value winning, item headers are sent, other outer headers
// are not, and Accept-Encoding never goes out.
func TestBatchHeaders(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{InheritHeaders: DefaultInheritHeaders})
	type echo struct {
		Headers map[string]string `json:"headers"`
	}
	res := g.run(t, `{"requests": [
		{"id": "a", "path": "/echo/a", "headers": {"Authorization": "Bearer item", "X-Item": "1", "accept-encoding": "br", "Accept": "application/json"}},
		{"id": "b", "path": "/echo/b", "host": "api.example.com"}
	]}`, "Authorization", "Bearer outer", "Cookie", "s=1", "Accept-Language", "fr", "Accept-Encoding", "br", "X-Other", "o")
	var a, b echo
	if err := json.Unmarshal(res.Responses[0].Body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(res.Responses[1].Body, &b); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(g.url, "http://")
	for _, tc := range []struct {
		who, name, got, want string
	}{
		{"a", "Authorization", a.Headers["Authorization"], "Bearer outer"},
		{"a", "Cookie", a.Headers["Cookie"], "s=1"},
		{"a", "Accept-Language", a.Headers["Accept-Language"], "fr"},
		{"a", "X-Item", a.Headers["X-Item"], "1"},
		{"a", "Accept", a.Headers["Accept"], "application/json"},
		{"a", "X-Other", a.Headers["X-Other"], ""},
		{"a", "X-Forwarded-Host", a.Headers["X-Forwarded-Host"], host},
		{"a", "X-Forwarded-For", a.Headers["X-Forwarded-For"], "127.0.0.1"},
		{"b", "Authorization", b.Headers["Authorization"], "Bearer outer"},
		{"b", "X-Item", b.Headers["X-Item"], ""},
		{"b", "X-Forwarded-Host", b.Headers["X-Forwarded-Host"], "api.example.com"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %s: got %q; want %q", tc.who, tc.name, tc.got, tc.want)
		}
	}
	for _, e := range []echo{a, b} {
		if strings.Contains(e.Headers["Accept-Encoding"], "br") {
			t.Errorf("Accept-Encoding %q reached the origin; want it dropped", e.Headers["Accept-Encoding"])
		}
	}
	// Without the header on the outer request, the item's own is kept.
	res = g.run(t, `{"requests": [{"id": "a", "path": "/echo/a", "headers": {"Authorization": "Bearer item"}}]}`)
	if err := json.Unmarshal(res.Responses[0].Body, &a); err != nil {
		t.Fatal(err)
	}
	if got := a.Headers["Authorization"]; got != "Bearer item" {
		t.Errorf("no outer Authorization: got %q; want the item's", got)
	}
}

// TestBatchBodies: request bodies as JSON or base64 reach the origin;
// response bodies come back as JSON values when they are JSON and as
// base64 otherwise.
func TestBatchBodies(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	bin := []byte{0, 1, 2, 0x7f, '\n'}
	res := g.run(t, fmt.Sprintf(`{"requests": [
		{"id": "json", "method": "POST", "path": "/echo/j", "body": {"a": [1, 2], "s": "<&>"}},
		{"id": "bin", "method": "PUT", "path": "/echo/b", "body_base64": %q, "headers": {"Content-Type": "application/octet-stream"}},
		{"id": "typed", "method": "PATCH", "path": "/echo/t", "body": "x", "headers": {"Content-Type": "text/plain"}},
		{"id": "null", "method": "DELETE", "path": "/echo/n", "body": null},
		{"id": "problem", "path": "/echo/p?type=application/problem%%2Bjson"},
		{"id": "broken", "path": "/echo/p?type=application/json&broken=1"},
		{"id": "html", "path": "/echo/h?type=text/html"}
	]}`, base64.StdEncoding.EncodeToString(bin)))
	type echo struct {
		Method  string            `json:"method"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	decode := func(i int) echo {
		var e echo
		if err := json.Unmarshal(res.Responses[i].Body, &e); err != nil {
			t.Fatalf("response %d: %s: %v", i, res.Responses[i].Body, err)
		}
		return e
	}
	if e := decode(0); e.Method != "POST" || e.Headers["Content-Type"] != "application/json" {
		t.Errorf("json: got %+v", e)
	} else {
		jsonEqual(t, "json body", []byte(e.Body), `{"a": [1, 2], "s": "<&>"}`)
	}
	if e := decode(1); e.Method != "PUT" || e.Body != string(bin) || e.Headers["Content-Type"] != "application/octet-stream" {
		t.Errorf("bin: got %+v", e)
	}
	if e := decode(2); e.Body != `"x"` || e.Headers["Content-Type"] != "text/plain" {
		t.Errorf("typed: got %+v", e)
	}
	if e := decode(3); e.Method != "DELETE" || e.Body != "" {
		t.Errorf("null: got %+v; want no body", e)
	}
	// application/problem+json is JSON; Set-Cookie lines stay apart.
	if res.Responses[4].Body == nil {
		t.Errorf("problem+json: got body_base64; want a JSON body")
	}
	if got := res.Responses[4].Headers["Set-Cookie"]; got != "a=1; Path=/\nb=2, c; Path=/" {
		t.Errorf("Set-Cookie: got %q", got)
	}
	for _, i := range []int{5, 6} {
		r := res.Responses[i]
		if r.Body != nil || r.BodyBase64 == nil {
			t.Errorf("%s: got body %s; want body_base64", r.ID, r.Body)
			continue
		}
		b, err := base64.StdEncoding.DecodeString(*r.BodyBase64)
		if err != nil || !strings.HasPrefix(string(b), `{"body"`) {
			t.Errorf("%s: got %q, %v", r.ID, b, err)
		}
	}
	// A JSON body is embedded as the origin wrote it, compacted but not
	// HTML-escaped.
	_, raw, _ := g.post(t, items("/raw"))
	if !strings.Contains(string(raw), `"body":{"s":"<&>","n":[1,2]}`) {
		t.Errorf("got %s; want the origin's JSON with <&> as is", raw)
	}
}

// TestBatchConcurrency: items run at most Concurrency at a time, and the
// responses come back in request order whatever order they finish in.
func TestBatchConcurrency(t *testing.T) {
	checkLeaks(t)
	const n, limit = 12, 3
	g := newGateway(t, Options{Concurrency: limit})
	var paths []string
	for i := range n {
		paths = append(paths, fmt.Sprintf("/gated/%d", i))
	}
	done := make(chan batchResult, 1)
	go func() {
		status, b, _ := g.post(t, items(paths...))
		var res batchResult
		if status != 200 || json.Unmarshal(b, &res) != nil {
			t.Errorf("batch: got %d %s", status, b)
		}
		done <- res
	}()
	deadline := time.Now().Add(5 * time.Second)
	for g.origin.inflight.Load() < limit {
		if time.Now().After(deadline) {
			t.Fatalf("got %d requests in flight; want %d", g.origin.inflight.Load(), limit)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a request over the limit to show up
	if got := g.origin.inflight.Load(); got != limit {
		t.Errorf("got %d requests in flight; want %d", got, limit)
	}
	g.origin.openGate()
	res := <-done
	if got := g.origin.maxInflight.Load(); got != limit {
		t.Errorf("got at most %d requests in flight; want %d", got, limit)
	}
	if len(res.Responses) != n {
		t.Fatalf("got %d responses; want %d", len(res.Responses), n)
	}
	for i, r := range res.Responses {
		if r.ID != fmt.Sprintf("i%d", i) || r.Status != 200 {
			t.Errorf("response %d: got %s %d", i, r.ID, r.Status)
		}
		jsonEqual(t, r.ID, r.Body, fmt.Sprintf(`{"path": "/gated/%d"}`, i))
	}
}

// TestBatchResponseLimit: an item whose response is over the limit fails
// alone, with 502.
func TestBatchResponseLimit(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{MaxResponseSize: 1024})
	res := g.run(t, items("/big", "/echo/a"))
	if r := res.Responses[0]; r.Status != 502 {
		t.Errorf("big: got %d %s; want 502", r.Status, r.Body)
	} else {
		jsonEqual(t, "big", r.Body, `{"error": "response body over 1024 bytes"}`)
	}
	if r := res.Responses[1]; r.Status != 200 {
		t.Errorf("small: got %d; want 200", r.Status)
	}
}

// TestBatchClientGone: a client that hangs up mid-batch leaves nothing
// running (checkLeaks), and the origin requests are cancelled.
func TestBatchClientGone(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{Concurrency: 2})
	req, _ := http.NewRequest(http.MethodPost, g.url+"/_batch", strings.NewReader(items("/slow", "/slow", "/slow", "/slow")))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := g.client.Do(req.WithContext(ctx)); err == nil {
		t.Fatalf("got a response; want the client's timeout")
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.origin.count("/slow") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := g.origin.count("/slow"); n != 2 {
		t.Errorf("origin saw %d slow requests; want 2 (the rest never started)", n)
	}
}

// TestBatchPassesOtherRequests: anything but the batch path goes to the
// proxy unchanged.
func TestBatchPassesOtherRequests(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{Path: "/api/batch"})
	if status, b, _ := g.get(t, "/echo/x"); status != 200 || !strings.Contains(string(b), `"path":"/echo/x"`) {
		t.Errorf("GET /echo/x: got %d %s", status, b)
	}
	if status, _, _ := g.get(t, "/_batch"); status != 404 {
		t.Errorf("GET /_batch with the endpoint elsewhere: got %d; want the proxy's 404", status)
	}
	resp, err := g.client.Post(g.url+"/api/batch", "application/json", strings.NewReader(items("/echo/x")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST /api/batch: got %d; want 200", resp.StatusCode)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	r := stubRouter{}
	for _, o := range []Options{
		{Path: "relative"},
		{Path: "/a/../b"},
		{Path: "/a?b"},
		{Concurrency: -1},
		{MaxTotalResponseSize: -1},
		{MaxResponseSize: 2 << 20, MaxTotalResponseSize: 1 << 20},
		{MaxTotalResponseSize: 1 << 20}, // below the default MaxResponseSize
		{InheritHeaders: []string{"Connection"}},
		{InheritHeaders: []string{"Accept-Encoding"}},
		{InheritHeaders: []string{"X-Forwarded-For"}},
		{InheritHeaders: []string{"bad name"}},
	} {
		if _, err := New(o, r); err == nil {
			t.Errorf("New(%+v): got no error", o)
		}
	}
	if _, err := New(Options{}, nil); err == nil {
		t.Errorf("New without a router: got no error")
	}
	if _, err := New(Options{InheritHeaders: []string{"authorization", "X-Tenant"}}, r); err != nil {
		t.Errorf("New: %v", err)
	}
	// The default total follows a larger item limit.
	if h, err := New(Options{MaxResponseSize: 32 << 20}, r); err != nil || h.o.MaxTotalResponseSize != 32<<20 {
		t.Errorf("New with a 32 MiB item limit: got %v; want a 32 MiB total", err)
	}
}

type stubRouter struct{ http.Handler }

func (stubRouter) RouteOf(*http.Request) (string, bool, bool) { return "", false, false }
func (stubRouter) AllowedMethods(*http.Request) []string      { return nil }

// TestBatchTotalResponseLimit: the bodies of a batch's items together
// stay within MaxTotalResponseSize. An item whose body would go over it
// fails alone with 502, the items before it keep theirs, a later one
// that fits still gets its own, and a body the batch does not keep (the
// aborted /half) leaves room for the others.
func TestBatchTotalResponseLimit(t *testing.T) {
	checkLeaks(t)
	// /big is 2060 bytes: two fit with the 6 of /text, a third does not;
	// nor would the second with /half's 1024 bytes still counted.
	const total = 2*2060 + 500
	g := newGateway(t, Options{MaxResponseSize: 2100, MaxTotalResponseSize: total, Concurrency: 1})
	res := g.run(t, items("/half", "/big", "/big", "/big", "/text"))
	want := []int{502, 200, 200, 502, 200}
	if len(res.Responses) != len(want) {
		t.Fatalf("got %d responses; want %d", len(res.Responses), len(want))
	}
	for i, status := range want {
		if r := res.Responses[i]; r.Status != status {
			t.Errorf("%s: got %d (%d bytes of body); want %d", r.ID, r.Status, len(r.Body), status)
		}
	}
	jsonEqual(t, "half", res.Responses[0].Body, `{"error": "response aborted"}`)
	if len(res.Responses[3].Body) < 200 {
		jsonEqual(t, "third big", res.Responses[3].Body, fmt.Sprintf(`{"error": "batch response too large: item bodies over %d bytes in all"}`, total))
	}
}

// TestBatchTotalResponseLimitConcurrent: items running at once share
// the budget exactly: as many bodies as fit are kept, whichever items
// they are, and none past it.
func TestBatchTotalResponseLimitConcurrent(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{MaxResponseSize: 2100, MaxTotalResponseSize: 4*2060 + 100, Concurrency: 8})
	var paths []string
	for range 10 {
		paths = append(paths, "/big")
	}
	res := g.run(t, items(paths...))
	counts := map[int]int{}
	for _, r := range res.Responses {
		counts[r.Status]++
		if r.Status == 502 && !strings.Contains(string(r.Body), "batch response too large") {
			t.Errorf("%s: got %s; want the batch's limit named", r.ID, r.Body)
		}
	}
	if counts[200] != 4 || counts[502] != 6 {
		t.Errorf("got statuses %v; want 4 of 200 and 6 of 502", counts)
	}
}

// TestBatchResponseEncoding: written item by item, the response is
// byte for byte what encoding it whole gives.
func TestBatchResponseEncoding(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	status, b, _ := g.post(t, items("/raw", "/text", "/echo/a?type=application/problem%2Bjson", "/nowhere", "/cached/x"))
	if status != 200 {
		t.Fatalf("got %d %s", status, b)
	}
	var whole struct {
		Responses []struct {
			ID         string            `json:"id"`
			Status     int               `json:"status"`
			Headers    map[string]string `json:"headers"`
			Body       json.RawMessage   `json:"body,omitempty"`
			BodyBase64 string            `json:"body_base64,omitempty"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(b, &whole); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(whole); err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(b) {
		t.Errorf("got\n%s\nwant\n%s", b, buf.String())
	}
}

// TestBatchMethodNotAllowed: an item in a method its path's routes do
// not take fails as the same request sent alone does, 405 with Allow,
// not as one no route takes.
func TestBatchMethodNotAllowed(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	status, _, h := g.get(t, "/echo/write/1")
	if status != http.StatusMethodNotAllowed || h.Get("Allow") != "POST, PUT" {
		t.Fatalf("GET /echo/write/1 alone: got %d, Allow %q; want 405, POST, PUT", status, h.Get("Allow"))
	}
	res := g.run(t, `{"requests": [
		{"id": "get", "path": "/echo/write/1"},
		{"id": "dots", "method": "DELETE", "path": "/echo/x/../write/1"},
		{"id": "put", "method": "PUT", "path": "/echo/write/1", "body": {"a": 1}},
		{"id": "none", "path": "/nowhere"}
	]}`)
	for _, i := range []int{0, 1} {
		r := res.Responses[i]
		if r.Status != http.StatusMethodNotAllowed || r.Headers["Allow"] != h.Get("Allow") {
			t.Errorf("%s: got %d, Allow %q; want 405, %q", r.ID, r.Status, r.Headers["Allow"], h.Get("Allow"))
		}
		jsonEqual(t, r.ID, r.Body, `{"error": "method not allowed"}`)
	}
	if r := res.Responses[2]; r.Status != 200 || !strings.Contains(string(r.Body), `"method":"PUT"`) {
		t.Errorf("put: got %d %s; want the echo of the PUT", r.Status, r.Body)
	}
	if r := res.Responses[3]; r.Status != 404 || r.Headers["Allow"] != "" {
		t.Errorf("none: got %d, Allow %q; want 404 without Allow", r.Status, r.Headers["Allow"])
	}
	if n := g.origin.count("/echo/write/1"); n != 1 {
		t.Errorf("origin saw %d requests for /echo/write/1; want 1 (the PUT)", n)
	}
}

// TestBatchRejectsAmbiguousText: a batch whose text decoding would
// settle silently (a field given twice, where the last would win; text
// that is not UTF-8, which would become U+FFFD) is refused with 400,
// naming the item. An item's body is sent as written, so names given
// twice in it are the upstream's to judge.
func TestBatchRejectsAmbiguousText(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	second := func(fields string) string {
		return `{"requests": [{"id": "ok", "path": "/echo/a"}, {"id": "x", "path": "/echo/b"` + fields + `}]}`
	}
	zero, one := 0, 1
	for _, tc := range []struct {
		name, body, err string
		item            *int
		id              string
	}{
		{"path twice", second(`, "path": "/echo/c"`), `field "path" given twice`, &one, "x"},
		{"path twice escaped", second(`, "pa\u0074h": "/echo/c"`), `field "path" given twice`, &one, "x"},
		{"path twice in another case", second(`, "PATH": "/echo/c"`), `field "PATH" given twice (also as "path"`, &one, "x"},
		{"id twice", second(`, "id": "y"`), `field "id" given twice`, &one, ""},
		{"headers twice", second(`, "headers": {"A": "1"}, "headers": {"B": "2"}`), `field "headers" given twice`, &one, "x"},
		{"header twice", second(`, "headers": {"X-A": "1", "X-A": "2"}`), "header X-A given twice", &one, "x"},
		{"requests twice", `{"requests": [{"id": "a", "path": "/echo/a"}], "requests": [{"id": "b", "path": "/echo/b"}]}`, `malformed batch: field "requests" given twice`, nil, ""},
		{"ids not UTF-8", `{"requests": [{"id": "` + "\xff\xfe" + `", "path": "/echo/a"}, {"id": "` + "\xfe\xff" + `", "path": "/echo/b"}]}`, "invalid UTF-8 at byte 22", &zero, ""},
		{"header value not UTF-8", second(`, "headers": {"X-A": "a` + "\xff" + `"}`), "invalid UTF-8 at byte", &one, "x"},
		{"body not UTF-8", second(`, "method": "POST", "body": "` + "\xc3" + `"`), "invalid UTF-8 at byte", &one, "x"},
		{"id a lone surrogate", `{"requests": [{"id": "\ud800", "path": "/echo/a"}, {"id": "\udc00", "path": "/echo/b"}]}`, `\ud800 at byte 22 is half a surrogate pair`, &zero, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b, _ := g.post(t, tc.body)
			if status != http.StatusBadRequest {
				t.Fatalf("got %d %s; want 400", status, b)
			}
			var e struct {
				Error string `json:"error"`
				Item  *int   `json:"item"`
				ID    string `json:"id"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("got %s: %v", b, err)
			}
			if !strings.Contains(e.Error, tc.err) {
				t.Errorf("got error %q; want it to contain %q", e.Error, tc.err)
			}
			if (e.Item == nil) != (tc.item == nil) || e.Item != nil && *e.Item != *tc.item || e.ID != tc.id {
				t.Errorf("got %s; want item %s, id %q", b, fmtItem(tc.item), tc.id)
			}
		})
	}
	if n := g.origin.requests.Load(); n != 0 {
		t.Errorf("refused batches cost %d origin requests; want 0", n)
	}

	// What the gateway does not decode is not its to refuse: names given
	// twice in a body go upstream as written, and characters beyond the
	// BMP, as pairs or raw, are ids like any other.
	res := g.run(t, `{"requests": [
		{"id": "\ud83d\ude00", "method": "POST", "path": "/echo/a", "body": {"k": 1, "k": 2}},
		{"id": "😀é", "path": "/echo/b", "headers": {"X-Item": "é"}}
	]}`)
	if r := res.Responses[0]; r.ID != "😀" || !strings.Contains(string(r.Body), `"body":"{\"k\": 1, \"k\": 2}"`) {
		t.Errorf("first: got %s %s; want the body as written", r.ID, r.Body)
	}
	if r := res.Responses[1]; r.ID != "😀é" || !strings.Contains(string(r.Body), `"X-Item":"é"`) {
		t.Errorf("second: got %s %s", r.ID, r.Body)
	}
}

func fmtItem(i *int) string {
	if i == nil {
		return "none"
	}
	return fmt.Sprint(*i)
}
