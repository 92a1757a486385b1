package batch

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

func mustURL(s string) *url.URL {
	u, err := url.ParseRequestURI(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestParseBatch(t *testing.T) {
	items, err := parseBatch([]byte(`{"requests": [
		{"id": "a", "path": "/x?y=1", "headers": {"accept": "text/html", "Accept-Encoding": "gzip"}},
		{"id": "b", "method": "post", "path": "/p", "host": "api.example.com:8443", "body": {"k": "v"}},
		{"id": "c", "method": "PUT", "path": "/q", "body_base64": "AAE="}
	]}`), limits{maxItems: 5, batchPath: "/_batch"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("got %d items", len(items))
	}
	a, b, c := items[0], items[1], items[2]
	if a.method != "GET" || a.url.Path != "/x" || a.url.RawQuery != "y=1" || a.header.Get("Accept") != "text/html" || a.header.Get("Accept-Encoding") != "" || a.body != nil {
		t.Errorf("a: got %+v", a)
	}
	if b.method != "POST" || b.host != "api.example.com:8443" || string(b.body) != `{"k": "v"}` || b.header.Get("Content-Type") != "application/json" {
		t.Errorf("b: got %+v", b)
	}
	if c.method != "PUT" || !bytes.Equal(c.body, []byte{0, 1}) || c.header.Get("Content-Type") != "" {
		t.Errorf("c: got %+v", c)
	}
}

func TestRecorder(t *testing.T) {
	rec := &recorder{header: http.Header{}, limit: 4}
	rec.Header().Set("A", "1")
	rec.WriteHeader(http.StatusEarlyHints) // informational: not the answer
	rec.Header().Set("B", "2")
	if _, err := rec.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	rec.Header().Set("C", "late")
	rec.WriteHeader(http.StatusTeapot) // after the header: ignored
	rec.Flush()
	if _, err := rec.Write([]byte("de")); err == nil || !rec.tooLarge {
		t.Errorf("over the limit: got err %v, tooLarge %v", err, rec.tooLarge)
	}
	if rec.status != http.StatusOK || rec.sent.Get("B") != "2" || rec.sent.Get("C") != "" || rec.body.String() != "abc" {
		t.Errorf("got %d %v %q", rec.status, rec.sent, rec.body.String())
	}
	// A panic other than ErrAbortHandler is contained to its sub-request.
	res := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		panic("boom")
	}), &http.Request{Method: "GET", URL: mustURL("/")}, 0, nil, quiet())
	if !res.aborted || res.status != http.StatusCreated {
		t.Errorf("panic: got %+v; want aborted", res)
	}
}

// FuzzParseBatch: the parser never panics, and what it accepts keeps the
// rules the endpoint promises.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"requests": [{"id": "a", "path": "/x"}]}`,
		`{"requests": [{"id": "a", "method": "POST", "path": "/x?y=1", "host": "h:1", "headers": {"A": "b"}, "body": {"k": [1, null]}}]}`,
		`{"requests": [{"id": "a", "path": "/x", "body_base64": "AAE="}, {"id": "b", "path": "/_batch"}]}`,
		`{"requests": [{"id": "a", "path": "/x", "headers": {"Connection": "close"}}]}`,
		`{"requests": [{"id": "a", "path": "/x"}, {"id": "a", "path": "/y"}]}`,
		`{"requests": []}`, `[]`, `{`, `null`, ``, `{"requests": [null]}`, `{"requests": [{"id": "a", "path": "/%zz"}]}`,
		`{"requests": [{"id": "1", "path": "/a", "PATH": "/b", "headers": {"A": "1", "a": "2"}}], "requests": []}`,
		`{"requests": [{"id": "\ud83d\ude00", "path": "/a", "headers": {"A": "\ud800"}, "body": {"k": 1, "k": "\udc00"}}]}`,
		"{\"requests\": [{\"id\": \"\xff\xfe\", \"path\": \"/a\"}, {\"id\": \"\xfe\xff\", \"path\": \"/b\"}]}",
	} {
		f.Add([]byte(s))
	}
	lim := limits{maxItems: 4, batchPath: "/_batch"}
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := parseBatch(data, lim)
		if (items == nil) == (err == nil) {
			t.Fatalf("got %d items and error %v; want exactly one", len(items), err)
		}
		if err != nil {
			if err.Status != http.StatusBadRequest && err.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("got status %d; want 400 or 413", err.Status)
			}
			if err.Msg == "" {
				t.Fatalf("got an empty message")
			}
			if _, jerr := json.Marshal(err); jerr != nil {
				t.Fatalf("error does not marshal: %v", jerr)
			}
			return
		}
		if len(items) == 0 || len(items) > lim.maxItems {
			t.Fatalf("got %d items", len(items))
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted a batch that is not UTF-8")
		}
		ids := map[string]bool{}
		for _, it := range items {
			if it.id == "" || ids[it.id] {
				t.Fatalf("got id %q empty or repeated", it.id)
			}
			ids[it.id] = true
			if !methods[it.method] {
				t.Fatalf("got method %q", it.method)
			}
			if it.url == nil || !strings.HasPrefix(it.url.Path, "/") || samePath(it.url.Path, lim.batchPath) {
				t.Fatalf("got path %v", it.url)
			}
			for name, vs := range it.header {
				if forbidden(name) != "" || name == "Accept-Encoding" || !httpguts.ValidHeaderFieldName(name) {
					t.Fatalf("got header %q", name)
				}
				for _, v := range vs {
					if !validValue(v) {
						t.Fatalf("got header value %q", v)
					}
				}
			}
		}
	})
}
