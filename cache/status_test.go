package cache

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

func TestStatusAppend(t *testing.T) {
	tests := []struct {
		name  string
		cache string
		s     Status
		want  string
	}{
		{"zero", "gateway", Status{}, "gateway"},
		{"hit ttl", "gateway", Status{Hit: true, TTL: 42 * time.Second, HasTTL: true}, "gateway; hit; ttl=42"},
		{"miss stored collapsed", "gateway", Status{Fwd: "uri-miss", FwdStatus: 200, Stored: true, Collapsed: true}, "gateway; fwd=uri-miss; fwd-status=200; stored; collapsed"},
		{"vary-miss ttl", "gateway", Status{Fwd: "vary-miss", FwdStatus: 200, Stored: true, TTL: 60 * time.Second, HasTTL: true}, "gateway; fwd=vary-miss; fwd-status=200; ttl=60; stored"},
		{"stale revalidated 304", "gateway", Status{Fwd: "stale", FwdStatus: 304, TTL: 30 * time.Second, HasTTL: true}, "gateway; fwd=stale; fwd-status=304; ttl=30"},
		{"request", "gateway", Status{Fwd: "request"}, "gateway; fwd=request"},
		{"hit wins over fwd", "gateway", Status{Hit: true, Fwd: "miss", FwdStatus: 200, Stored: true, Collapsed: true}, "gateway; hit"},
		{"stored without fwd dropped", "gateway", Status{Stored: true, Collapsed: true}, "gateway"},
		{"invalid fwd dropped", "gateway", Status{Fwd: "no such", FwdStatus: 200, Stored: true}, "gateway"},
		{"fwd-status out of range", "gateway", Status{Fwd: "miss", FwdStatus: 42}, "gateway; fwd=miss"},
		{"ttl zero", "gateway", Status{Hit: true, HasTTL: true}, "gateway; hit; ttl=0"},
		{"ttl without HasTTL", "gateway", Status{Hit: true, TTL: time.Minute}, "gateway; hit"},
		{"ttl rounds down", "gateway", Status{Hit: true, TTL: 1500 * time.Millisecond, HasTTL: true}, "gateway; hit; ttl=1"},
		{"ttl stale", "gateway", Status{Hit: true, TTL: -500 * time.Millisecond, HasTTL: true}, "gateway; hit; ttl=-1"},
		{"ttl stale whole", "gateway", Status{Hit: true, TTL: -3 * time.Second, HasTTL: true}, "gateway; hit; ttl=-3"},
		{"key detail", "gateway", Status{Fwd: "miss", Key: "http\x00example.com\x00/a", Detail: `say "hi" \o/`}, `gateway; fwd=miss; key="http?example.com?/a"; detail="say \"hi\" \\o/"`},
		{"non-ascii", "gateway", Status{Hit: true, Detail: "é\x7f\t"}, `gateway; hit; detail="????"`},
		{"token name chars", "*edge:1/a.b", Status{Hit: true}, "*edge:1/a.b; hit"},
		{"name not token", "my cache", Status{Hit: true}, `"my cache"; hit`},
		{"name digit first", "1cache", Status{}, `"1cache"`},
		{"name empty", "", Status{}, `""`},
		{"name quotes", `a"b`, Status{}, `"a\"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.s.Append(nil, tt.cache)); got != tt.want {
				t.Errorf("%+v.Append(%q) = %q; want %q", tt.s, tt.cache, got, tt.want)
			}
		})
	}
}

func TestAddCacheStatus(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		want     []string
	}{
		{"none", nil, []string{"gateway; hit"}},
		{"upstream kept first", []string{"OriginCache; fwd=miss; stored"}, []string{"OriginCache; fwd=miss; stored, gateway; hit"}},
		{"several upstream lines", []string{"A; hit", " ", "B; fwd=stale, C; hit "}, []string{"A; hit, B; fwd=stale, C; hit, gateway; hit"}},
		{"empty line", []string{""}, []string{"gateway; hit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.existing != nil {
				h["Cache-Status"] = slices.Clone(tt.existing)
			}
			AddCacheStatus(h, "gateway", Status{Hit: true})
			if got := h["Cache-Status"]; !slices.Equal(got, tt.want) {
				t.Errorf("after AddCacheStatus to %q: %q; want %q", tt.existing, got, tt.want)
			}
			if _, err := checkCacheStatus(h.Get("Cache-Status")); err != nil {
				t.Errorf("result %q: %v", h.Get("Cache-Status"), err)
			}
		})
	}
}

// checkCacheStatus is a small RFC 8941 list parser for what Append emits
// (items are tokens or strings; parameters are bare, tokens, integers or
// strings), returning the member names. It checks the characters, quote
// balance and escapes, and that the list splits into members at commas
// outside strings.
func checkCacheStatus(s string) ([]string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return nil, errors.New("non-printable byte")
		}
	}
	var names []string
	i := 0
	for {
		name, j, err := parseBareItem(s, i, false)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
		i = j
		for i < len(s) && s[i] == ';' {
			i++
			for i < len(s) && s[i] == ' ' {
				i++
			}
			k := i
			for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] == '-' || s[i] == '*' || s[i] >= '0' && s[i] <= '9' || s[i] == '_' || s[i] == '.') {
				i++
			}
			if k == i {
				return nil, errors.New("empty parameter key")
			}
			if i < len(s) && s[i] == '=' {
				if _, i, err = parseBareItem(s, i+1, true); err != nil {
					return nil, err
				}
			}
		}
		if i == len(s) {
			return names, nil
		}
		if s[i] != ',' {
			return nil, errors.New("junk after member")
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i == len(s) {
			return nil, errors.New("trailing comma")
		}
	}
}

func parseBareItem(s string, i int, allowInt bool) (string, int, error) {
	if i >= len(s) {
		return "", i, errors.New("missing item")
	}
	switch c := s[i]; {
	case c == '"':
		var out []byte
		for i++; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
				if i >= len(s) || (s[i] != '"' && s[i] != '\\') {
					return "", i, errors.New("bad escape")
				}
				out = append(out, s[i])
			case '"':
				return string(out), i + 1, nil
			default:
				out = append(out, s[i])
			}
		}
		return "", i, errors.New("unterminated string")
	case allowInt && (c == '-' || c >= '0' && c <= '9'):
		j := i
		if c == '-' {
			j++
		}
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == k || j-k > 15 {
			return "", j, errors.New("bad integer")
		}
		return s[i:j], j, nil
	default:
		j := i
		for j < len(s) && (httpguts.IsTokenRune(rune(s[j])) || s[j] == ':' || s[j] == '/') {
			j++
		}
		if !isSFToken(s[i:j]) {
			return "", j, errors.New("bad token")
		}
		return s[i:j], j, nil
	}
}

func FuzzCacheStatus(f *testing.F) {
	f.Add("gateway", "key", "detail", "miss", int64(42e9), true, false)
	f.Add("my cache", "a\x00b", `"\`, "no such", int64(-1), false, true)
	f.Add("", "", "é", "", int64(0), true, true)
	f.Fuzz(func(t *testing.T, name, key, detail, fwd string, ttl int64, hit, flag bool) {
		s := Status{Hit: hit, Fwd: fwd, FwdStatus: int(ttl % 1000), Stored: flag, Collapsed: !flag,
			TTL: time.Duration(ttl), HasTTL: flag, Key: key, Detail: detail}
		h := http.Header{"Cache-Status": {`Up; detail="x, y"`}}
		AddCacheStatus(h, name, s)
		v := h.Get("Cache-Status")
		names, err := checkCacheStatus(v)
		if err != nil {
			t.Fatalf("AddCacheStatus(%q, %+v) = %q: %v", name, s, v, err)
		}
		if len(names) != 2 || names[0] != "Up" {
			t.Fatalf("members of %q = %q; want Up and ours", v, names)
		}
		if isSFToken(name) && names[1] != name {
			t.Fatalf("name %q came back as %q", name, names[1])
		}
		if got := string(s.Append(nil, name)); "Up; detail=\"x, y\", "+got != v {
			t.Fatalf("header %q does not end with Append's %q", v, got)
		}
	})
}

func TestStatusAppendAllocs(t *testing.T) {
	s := Status{Fwd: "uri-miss", FwdStatus: 200, Stored: true, TTL: time.Minute, HasTTL: true, Key: "http\x00a/b", Detail: "x"}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { s.Append(buf[:0], "gateway") }); n != 0 {
		t.Errorf("Append allocs = %v; want 0", n)
	}
}

// TestAddCacheStatusAllocs: a forwarded response's Cache-Status costs one
// allocation, its value and the field's slice together; a line longer
// than that allocation holds is still whole.
func TestAddCacheStatusAllocs(t *testing.T) {
	s := Status{Fwd: "uri-miss", FwdStatus: 200, Detail: "no-store"}
	h := http.Header{}
	if n := testing.AllocsPerRun(100, func() { AddCacheStatus(h, "gateway", s); delete(h, "Cache-Status") }); n != 1 {
		t.Errorf("AddCacheStatus allocs = %v; want 1", n)
	}
	long := Status{Fwd: "uri-miss", FwdStatus: 200, Detail: strings.Repeat("d", 200)}
	AddCacheStatus(h, "gateway", long)
	if got, want := h["Cache-Status"], []string{string(long.Append(nil, "gateway"))}; !slices.Equal(got, want) {
		t.Errorf("Cache-Status %q; want %q", got, want)
	}
	AddCacheStatus(h, "edge", s)
	if got := h.Get("Cache-Status"); !strings.HasPrefix(got, "gateway; fwd=uri-miss") || !strings.HasSuffix(got, ", "+string(s.Append(nil, "edge"))) {
		t.Errorf("Cache-Status %q; want gateway's member, then edge's", got)
	}
}

func BenchmarkStatusAppend(b *testing.B) {
	s := Status{Fwd: "uri-miss", FwdStatus: 200, Stored: true, TTL: time.Minute, HasTTL: true}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.Append(buf[:0], "gateway")
	}
}

func BenchmarkAddCacheStatus(b *testing.B) {
	s := Status{Hit: true, TTL: time.Minute, HasTTL: true}
	b.ReportAllocs()
	for b.Loop() {
		h := http.Header{"Cache-Status": {"Origin; fwd=miss"}}
		AddCacheStatus(h, "gateway", s)
	}
}

// TestStatusValuesShared: responses sent with the same Status without a
// ttl share one Cache-Status value, and any other Status (including one
// landing in the same slot) gets its own line; adding a line to a shared
// value copies it.
func TestStatusValuesShared(t *testing.T) {
	c, err := New(Options{Name: "edge", MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	send := func(st Status) http.Header {
		h := http.Header{}
		c.addStatus(r, h, st)
		return h
	}
	pass := Status{Fwd: "uri-miss", FwdStatus: 200, Detail: "hit-for-pass", pass: true}
	a, b := send(pass), send(pass)
	if &a["Cache-Status"][0] != &b["Cache-Status"][0] {
		t.Error("two responses of one Status: values not shared")
	}
	others := []Status{
		{Fwd: "uri-miss", FwdStatus: 200, Detail: "hit-for-pass"}, // same line, other outcome
		{Fwd: "uri-miss", FwdStatus: 200, Detail: "no-store"},
		{Fwd: "uri-miss", FwdStatus: 208, Detail: "hit-for-pass"}, // same slot
		{Fwd: "vary-miss", FwdStatus: 200, Detail: "no-store"},
		{Fwd: "uri-miss", FwdStatus: 200, Stored: true, TTL: time.Minute, HasTTL: true},
	}
	for _, st := range append([]Status{pass}, others...) {
		h := send(st)
		if got, want := h["Cache-Status"], []string{string(st.Append(nil, "edge"))}; !slices.Equal(got, want) {
			t.Errorf("%+v: Cache-Status %q; want %q", st, got, want)
		}
	}
	h := send(pass)
	h.Add("Cache-Status", "other")
	if got := send(pass)["Cache-Status"]; len(got) != 1 {
		t.Errorf("after another response added a line, the shared value is %q", got)
	}
	stored := others[len(others)-1] // a ttl: a line of its own each time
	if shared, own := testing.AllocsPerRun(100, func() { send(pass) }), testing.AllocsPerRun(100, func() { send(stored) }); shared != own-1 {
		t.Errorf("a response with a shared Cache-Status: %v allocations; want one fewer than with its own (%v)", shared, own)
	}
}
