package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"
)

// headBytes is what writeHead writes for r, and whether it did.
func headBytes(r *http.Request) (string, bool) {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	ok := writeHead(bw, r)
	bw.Flush()
	return b.String(), ok
}

// requestWriteBytes is what Request.Write writes for r.
func requestWriteBytes(t testing.TB, r *http.Request) (string, error) {
	t.Helper()
	var b bytes.Buffer
	err := r.Write(&b)
	return b.String(), err
}

func newHeadRequest(t testing.TB, method, target string, h http.Header) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		r.Header = h
	}
	return r
}

func TestWriteHeadMatchesRequestWrite(t *testing.T) {
	proxied := http.Header{
		"Accept":            {"*/*"},
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {"gw.test"},
		"X-Forwarded-Proto": {"http"},
		"Via":               {"2 gateway"},
		"X-Request-Id":      {"0123456789abcdef0123456789abcdef"},
		"Cookie":            {"a=1", "b=2"},
		"User-Agent":        {"h2load nghttp2/1.52.0"},
	}
	tests := []struct {
		name   string
		method string
		target string
		h      http.Header
		host   string
	}{
		{"proxied GET", "GET", "http://127.0.0.1:9000/a/b?q=1&r=%20", proxied, ""},
		{"HEAD", "HEAD", "http://up.test/", nil, ""},
		{"DELETE", "DELETE", "http://up.test/item/7", http.Header{"Accept": {"application/json"}}, ""},
		{"OPTIONS", "OPTIONS", "http://up.test/x", nil, ""},
		{"no User-Agent", "GET", "http://up.test/", http.Header{"User-Agent": {""}}, ""},
		{"User-Agent listed empty", "GET", "http://up.test/", http.Header{"User-Agent": {}}, ""},
		{"two User-Agents", "GET", "http://up.test/", http.Header{"User-Agent": {"a", "b"}}, ""},
		{"Host header ignored", "GET", "http://up.test/", http.Header{"Host": {"evil.test"}}, ""},
		{"Host field wins", "GET", "http://up.test/", nil, "api.example.com:8443"},
		{"excluded headers", "GET", "http://up.test/", http.Header{"Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}}, ""},
		{"empty value", "GET", "http://up.test/", http.Header{"X-Empty": {""}}, ""},
		{"IPv6 host", "GET", "http://[::1]:8080/", nil, ""},
		{"empty path", "GET", "http://up.test", nil, ""},
		{"many headers", "GET", "http://up.test/", manyHeaders(40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHeadRequest(t, tt.method, tt.target, tt.h)
			if tt.host != "" {
				r.Host = tt.host
			}
			got, ok := headBytes(r)
			if !ok {
				t.Fatalf("writeHead declined %s %s", tt.method, tt.target)
			}
			want, err := requestWriteBytes(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("writeHead wrote\n%q\nRequest.Write writes\n%q", got, want)
			}
		})
	}
}

func manyHeaders(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set("X-H"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), "v")
	}
	return h
}

// TestWriteHeadDeclines: whatever Request.Write would send differently
// from the plain form, or with a body, is left to it, with nothing
// written.
func TestWriteHeadDeclines(t *testing.T) {
	mk := func(method, target string) *http.Request { return newHeadRequest(t, method, target, nil) }
	traced := mk("GET", "http://up.test/")
	traced = traced.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {}}))
	tests := []struct {
		name string
		r    *http.Request
		edit func(r *http.Request)
	}{
		{"POST", mk("POST", "http://up.test/"), nil},
		{"PUT", mk("PUT", "http://up.test/"), nil},
		{"PATCH", mk("PATCH", "http://up.test/"), nil},
		{"CONNECT", mk("CONNECT", "http://up.test:443"), nil},
		{"content length", mk("GET", "http://up.test/"), func(r *http.Request) { r.ContentLength = 3 }},
		{"transfer encoding", mk("GET", "http://up.test/"), func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }},
		{"trailer", mk("GET", "http://up.test/"), func(r *http.Request) { r.Trailer = http.Header{"X": nil} }},
		{"close", mk("GET", "http://up.test/"), func(r *http.Request) { r.Close = true }},
		{"opaque", mk("GET", "http://up.test/"), func(r *http.Request) { r.URL.Opaque = "//up.test/x" }},
		{"non-ASCII host", mk("GET", "http://up.test/"), func(r *http.Request) { r.Host = "bücher.example" }},
		{"invalid host", mk("GET", "http://up.test/"), func(r *http.Request) { r.Host = "up.test/evil" }},
		{"IPv6 zone", mk("GET", "http://up.test/"), func(r *http.Request) { r.Host = "[fe80::1%25en0]:80" }},
		{"control byte in query", mk("GET", "http://up.test/"), func(r *http.Request) { r.URL = &url.URL{Path: "/a", RawQuery: "b\x7f"} }},
		{"newline in value", mk("GET", "http://up.test/"), func(r *http.Request) { r.Header.Set("X-A", "a\r\nX-Evil: 1") }},
		{"blank around value", mk("GET", "http://up.test/"), func(r *http.Request) { r.Header.Set("X-A", " a") }},
		{"blank User-Agent", mk("GET", "http://up.test/"), func(r *http.Request) { r.Header.Set("User-Agent", "ua\t") }},
		{"invalid name", mk("GET", "http://up.test/"), func(r *http.Request) { r.Header["Bad Name"] = []string{"v"} }},
		{"traced", traced, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				tt.edit(tt.r)
			}
			got, ok := headBytes(tt.r)
			if ok || got != "" {
				t.Errorf("writeHead: wrote %q, ok %v; want it to decline with nothing written", got, ok)
			}
		})
	}
}

// FuzzWriteHead: whenever writeHead writes a request head, it is the one
// Request.Write writes.
func FuzzWriteHead(f *testing.F) {
	f.Add("GET", "/a?b=c", "api.test", "X-A", "v", "ua")
	f.Add("DELETE", "/", "[::1]:80", "Cookie", "a=1; b=2", "")
	f.Add("HEAD", "/%zz", "h", "X-B", " v", "ua ")
	f.Fuzz(func(t *testing.T, method, path, host, name, value, ua string) {
		r := &http.Request{
			Method: method,
			URL:    &url.URL{Scheme: "http", Host: "up.test", Path: path},
			Host:   host,
			Header: http.Header{name: {value}, "User-Agent": {ua}},
		}
		got, ok := headBytes(r)
		if !ok {
			if got != "" {
				t.Fatalf("declined after writing %q", got)
			}
			return
		}
		want, err := requestWriteBytes(t, r)
		if err != nil {
			t.Fatalf("writeHead wrote %q; Request.Write fails: %v", got, err)
		}
		if got != want {
			t.Fatalf("writeHead wrote\n%q\nRequest.Write writes\n%q", got, want)
		}
	})
}
