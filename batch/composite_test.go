package batch

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestComposite: the parts are fetched through the proxy (and the cache
// of their routes) and combined under their keys.
func TestComposite(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	status, b, h := g.get(t, "/dash/42")
	if status != http.StatusOK {
		t.Fatalf("got %d %s; want 200", status, b)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("got Content-Type %q, Cache-Control %q", h.Get("Content-Type"), h.Get("Cache-Control"))
	}
	jsonEqual(t, "dash", b, `{
		"profile": {"user": "42", "raw": "", "uri": "/users/42"},
		"orders": [{"user": "42", "uri": "/orders?user=42"}]
	}`)
	// Keys are in the order of the parts.
	if !strings.HasPrefix(string(b), `{"profile":`) {
		t.Errorf("got %s; want profile first", b)
	}
	// The profile part is cached on its route: a second composite costs
	// only the uncacheable part.
	before := g.origin.count("/users/42")
	if status, _, _ := g.get(t, "/dash/42"); status != 200 {
		t.Fatalf("second: got %d", status)
	}
	if n := g.origin.count("/users/42") - before; n != 0 {
		t.Errorf("second composite fetched the cached part %d times; want 0", n)
	}
	if n := g.origin.count("/orders"); n != 2 {
		t.Errorf("origin saw /orders %d times; want 2", n)
	}
	// HEAD has the headers and no body.
	resp, err := g.client.Head(g.url + "/dash/42")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestCompositeParams: values are matched per segment, unescaped, and
// escaped again into the parts' path and query; values that could move a
// part to another route are refused.
func TestCompositeParams(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	status, b, _ := g.get(t, "/dash/a%20b%3Fc%26d=e+f%25")
	if status != http.StatusOK {
		t.Fatalf("got %d %s; want 200", status, b)
	}
	jsonEqual(t, "escaped", b, `{
		"profile": {"user": "a b?c&d=e+f%", "raw": "", "uri": "/users/a%20b%3Fc&d=e+f%25"},
		"orders": [{"user": "a b?c&d=e+f%", "uri": "/orders?user=a+b%3Fc%26d%3De%2Bf%25"}]
	}`)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/dash", 404},
		{"/dash/", 404},
		{"/dash/42/x", 404},
		{"/dash/42/", 404},
		{"/dash/a%2Fb", 400},
		{"/dash/%2E%2E", 404}, // resolved to / by the proxy
		{"/dash/.", 404},      // resolved to /dash by the proxy
	} {
		status, b, _ := g.get(t, tc.path)
		if status != tc.status {
			t.Errorf("GET %s: got %d %s; want %d", tc.path, status, b, tc.status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/dash/42", nil)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: got %d, Allow %q; want 405, GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestCompositeFailures: a failed part under omit and under fail, every
// part failing, and a composite that includes itself.
func TestCompositeFailures(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	status, b, _ := g.get(t, "/dashomit/7")
	if status != http.StatusOK {
		t.Fatalf("omit: got %d %s; want 200", status, b)
	}
	jsonEqual(t, "omit", b, `{
		"profile": {"user": "7", "raw": "", "uri": "/users/7"},
		"errors": {"broken": {"status": 503, "error": "status 503"}, "plain": {"status": 200, "error": "not a JSON body"}}
	}`)

	status, b, _ = g.get(t, "/dashfail/7")
	if status != http.StatusBadGateway {
		t.Fatalf("fail: got %d %s; want 502", status, b)
	}
	jsonEqual(t, "fail", b, `{"error": "part broken failed: status 503", "part": "broken", "status": 503,
		"errors": {"broken": {"status": 503, "error": "status 503"}}}`)

	status, b, _ = g.get(t, "/allfail/7")
	if status != http.StatusBadGateway || !strings.Contains(string(b), `"error":"every part failed"`) {
		t.Errorf("all fail: got %d %s; want 502 every part failed", status, b)
	}

	status, b, _ = g.get(t, "/loop/1")
	if status != http.StatusBadGateway {
		t.Fatalf("loop: got %d %s; want 502", status, b)
	}
	jsonEqual(t, "loop", b, `{"error": "part self failed: status 508", "part": "self", "status": 508,
		"errors": {"self": {"status": 508, "error": "status 508"}}}`)
	if n := g.origin.count("/loop/1"); n != 0 {
		t.Errorf("origin saw the loop")
	}
}

// TestCompositeInBatch: a batchable composite route may be a batch item.
func TestCompositeInBatch(t *testing.T) {
	checkLeaks(t)
	g := newGateway(t, Options{})
	res := g.run(t, items("/dash/5", "/dashomit/5"))
	if r := res.Responses[0]; r.Status != 200 {
		t.Errorf("dash: got %d %s", r.Status, r.Body)
	} else {
		var v struct {
			Profile struct{ User string } `json:"profile"`
		}
		if err := json.Unmarshal(r.Body, &v); err != nil || v.Profile.User != "5" {
			t.Errorf("dash: got %s", r.Body)
		}
	}
	if r := res.Responses[1]; r.Status != 403 {
		t.Errorf("dashomit is not batchable: got %d; want 403", r.Status)
	}
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, prefix string
		params          []string
	}{
		{"/dashboard/{user}", "/dashboard", []string{"user"}},
		{"/a/b/{x}/c/{y}", "/a/b", []string{"x", "y"}},
		{"/{x}/a", "/", []string{"x"}},
		{"/static/page", "/static/page", nil},
		{"/static/", "/static/", nil},
		{"/", "/", nil},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", tc.pattern, err)
			continue
		}
		if p.Prefix() != tc.prefix || strings.Join(p.Params(), ",") != strings.Join(tc.params, ",") {
			t.Errorf("ParsePattern(%q): got prefix %q, params %v; want %q, %v", tc.pattern, p.Prefix(), p.Params(), tc.prefix, tc.params)
		}
	}
	for _, bad := range []string{"", "x/{a}", "/a?b", "/a/{b", "/a/b}", "/a/{b}c", "/a/{}", "/a/{b-c}", "/{a}/{a}"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q): got no error", bad)
		}
	}
	p, _ := ParsePattern("/u/{id}")
	for _, bad := range []string{"users/{id}", "/u/{nope}", "/u/{id", "/u/id}", "/u#x", "/u/{}"} {
		if _, err := p.ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q): got no error", bad)
		}
	}
	for path, want := range map[string]string{
		"/u/42":        "42",
		"/u/a%20b":     "a b",
		"/u/%E2%82%AC": "€",
	} {
		if got, err := p.Match(path); err != nil || got["id"] != want {
			t.Errorf("Match(%q): got %v, %v; want id %q", path, got, err, want)
		}
	}
	for path, wantErr := range map[string]bool{
		"/u":        false,
		"/u/":       false,
		"/u/1/2":    false,
		"/v/1":      false,
		"/u/%zz":    false,
		"/u/%2E%2E": true,
		"/u/.":      true,
		"/u/a%2Fb":  true,
		"/u/a%0Ab":  true,
		"u/1":       false,
	} {
		_, err := p.Match(path)
		if err == nil || errors.Is(err, errNoMatch) == wantErr {
			t.Errorf("Match(%q): got %v; want invalid value %v", path, err, wantErr)
		}
	}
	tm, err := p.ParseTemplate("/v/{id}.json?a={id}&b=c?d")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tm.Expand(map[string]string{"id": "x y/z"}), "/v/x%20y%2Fz.json?a=x+y%2Fz&b=c?d"; got != want {
		t.Errorf("Expand: got %q; want %q", got, want)
	}
}

func TestNewCompositeRejects(t *testing.T) {
	for _, o := range []CompositeOptions{
		{Path: "/a/{x}"},
		{Path: "/a/{x}", Parts: []Part{{Key: "a", Path: "/b/{y}"}}},
		{Path: "/a/{x}", Parts: []Part{{Key: "", Path: "/b"}}},
		{Path: "/a/{x}", Parts: []Part{{Key: "errors", Path: "/b"}}},
		{Path: "/a/{x}", Parts: []Part{{Key: "a", Path: "/b"}, {Key: "a", Path: "/c"}}},
		{Path: "/a/{x}", OnError: "ignore", Parts: []Part{{Key: "a", Path: "/b"}}},
		{Path: "a", Parts: []Part{{Key: "a", Path: "/b"}}},
	} {
		if _, err := NewComposite(o); err == nil {
			t.Errorf("NewComposite(%+v): got no error", o)
		}
	}
	c, err := NewComposite(CompositeOptions{Path: "/a/{x}", Parts: []Part{{Key: "a", Path: "/b"}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	// Served before Bind: an error, not a crash.
	rec := &recorder{header: http.Header{}}
	c.ServeHTTP(rec, &http.Request{Method: "GET", URL: mustURL("/a/1")})
	if rec.status != http.StatusInternalServerError {
		t.Errorf("before Bind: got %d; want 500", rec.status)
	}
}
