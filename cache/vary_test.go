package cache

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestVaryFields(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string // Vary field lines; nil = no Vary
		fields []string
		star   bool
	}{
		{"absent", nil, nil, false},
		{"empty", []string{""}, nil, false},
		{"only commas", []string{" , ,"}, nil, false},
		{"one", []string{"accept-encoding"}, []string{"Accept-Encoding"}, false},
		{"case-insensitive names", []string{"ACCEPT-ENCODING, Accept-encoding"}, []string{"Accept-Encoding"}, false},
		{"sorted", []string{"User-Agent, Accept-Language,Accept"}, []string{"Accept", "Accept-Language", "User-Agent"}, false},
		{"multiple lines", []string{"Accept", "accept-language", " accept "}, []string{"Accept", "Accept-Language"}, false},
		{"star", []string{"*"}, nil, true},
		{"star among names", []string{"Accept", "Cookie, * "}, []string{"Accept", "Cookie"}, true},
		{"invalid name", []string{"Accept, a b"}, []string{"Accept"}, true},
		{"quoted name", []string{`"Accept"`}, nil, true},
		{"set by the gateway", []string{"Accept, x-forwarded-for"}, []string{"Accept", "X-Forwarded-For"}, true},
		{"set by the gateway, any case", []string{"VIA"}, []string{"Via"}, true},
		{"request id", []string{"X-Request-ID"}, []string{"X-Request-Id"}, true},
		{"forwarded", []string{"Accept", " forwarded "}, []string{"Accept", "Forwarded"}, true},
		{"other forwarded field", []string{"X-Forwarded-Prefix"}, []string{"X-Forwarded-Prefix"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.lines != nil {
				h["Vary"] = tt.lines
			}
			fields, star := VaryFields(h)
			if !slices.Equal(fields, tt.fields) || star != tt.star {
				t.Errorf("VaryFields(%q) = %q, %v; want %q, %v", tt.lines, fields, star, tt.fields, tt.star)
			}
		})
	}
}

// reqWith builds a request with the given header field lines, kept exactly
// (no canonicalization beyond the name, no trimming).
func reqWith(lines map[string][]string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	for name, vs := range lines {
		r.Header[http.CanonicalHeaderKey(name)] = vs
	}
	return r
}

func TestVariantKey(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		h      map[string][]string
		want   string
	}{
		{"no fields", nil, map[string][]string{"Accept": {"x"}}, ""},
		{"absent", []string{"Accept"}, nil, "\x00v:Accept"},
		{"empty", []string{"Accept"}, map[string][]string{"Accept": {""}}, "\x00v:Accept="},
		{"empty elements", []string{"Accept"}, map[string][]string{"Accept": {" , ,"}}, "\x00v:Accept="},
		{"trim and join", []string{"Accept"}, map[string][]string{"Accept": {" text/html ,application/json;q=0.9,, "}}, "\x00v:Accept=text/html, application/json;q=0.9"},
		{"lines joined", []string{"Accept"}, map[string][]string{"Accept": {"a", "b ,c"}}, "\x00v:Accept=a, b, c"},
		{"collapse ws", []string{"User-Agent"}, map[string][]string{"User-Agent": {"Foo/1 \t (X;  Y)"}}, "\x00v:User-Agent=Foo/1 (X; Y)"},
		{"order kept", []string{"Accept-Language"}, map[string][]string{"Accept-Language": {"fr, EN"}}, "\x00v:Accept-Language=fr, EN"},
		{"quoted kept", []string{"X-A"}, map[string][]string{"X-A": {`a;p="x ,  y" ,b`}}, "\x00v:X-A=a;p=\"x ,  y\", b"},
		{"ae sorted lowered", []string{"Accept-Encoding"}, map[string][]string{"Accept-Encoding": {"GZIP, br ; q=0.5", "Deflate"}}, "\x00v:Accept-Encoding=br;q=0.5, deflate, gzip"},
		{"ae empty", []string{"Accept-Encoding"}, map[string][]string{"Accept-Encoding": {""}}, "\x00v:Accept-Encoding="},
		{"two fields", []string{"Accept", "Accept-Encoding"}, map[string][]string{"Accept-Encoding": {"br"}}, "\x00v:Accept\x00v:Accept-Encoding=br"},
		{"nul escaped", []string{"X-A"}, map[string][]string{"X-A": {"a\x00b\x01"}}, "\x00v:X-A=a\x010b\x011"},
		{"unterminated quote raw", []string{"X-A"}, map[string][]string{"X-A": {`"a ,`, `b"`}}, "\x00r:X-A=\"a ,\x012b\""},
		{"escaped closing quote raw", []string{"X-A"}, map[string][]string{"X-A": {`"a\"`}}, "\x00r:X-A=\"a\\\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(VariantKey(nil, tt.fields, reqWith(tt.h)))
			if got != tt.want {
				t.Errorf("VariantKey(%q, %q) = %q; want %q", tt.fields, tt.h, got, tt.want)
			}
		})
	}
}

func TestVaryMatches(t *testing.T) {
	ae := []string{"Accept-Encoding"}
	tests := []struct {
		name          string
		vary          []string // Vary lines of the stored response
		stored, fresh map[string][]string
		want          bool
	}{
		{"no vary", nil, map[string][]string{"Accept-Encoding": {"gzip"}}, map[string][]string{"Accept-Encoding": {"br"}}, true},
		{"empty vary", []string{""}, map[string][]string{"Accept": {"a"}}, map[string][]string{"Accept": {"b"}}, true},
		{"same", ae, map[string][]string{"Accept-Encoding": {"gzip"}}, map[string][]string{"Accept-Encoding": {"gzip"}}, true},
		{"ae permuted", ae, map[string][]string{"Accept-Encoding": {"gzip, br"}}, map[string][]string{"Accept-Encoding": {"br,gzip"}}, true},
		{"ae case and lines", ae, map[string][]string{"Accept-Encoding": {"gzip, br"}}, map[string][]string{"Accept-Encoding": {"BR", " Gzip "}}, true},
		{"ae different", ae, map[string][]string{"Accept-Encoding": {"gzip"}}, map[string][]string{"Accept-Encoding": {"br"}}, false},
		{"ae subset", ae, map[string][]string{"Accept-Encoding": {"gzip, br"}}, map[string][]string{"Accept-Encoding": {"gzip"}}, false},
		{"absent vs empty", ae, map[string][]string{}, map[string][]string{"Accept-Encoding": {""}}, false},
		{"both absent", ae, nil, nil, true},
		{"vary name case", []string{"accept-LANGUAGE"}, map[string][]string{"Accept-Language": {"en,fr"}}, map[string][]string{"Accept-Language": {"en , fr"}}, true},
		{"order matters", []string{"Accept-Language"}, map[string][]string{"Accept-Language": {"en, fr"}}, map[string][]string{"Accept-Language": {"fr, en"}}, false},
		{"value case matters", []string{"Accept-Language"}, map[string][]string{"Accept-Language": {"en"}}, map[string][]string{"Accept-Language": {"EN"}}, false},
		{"multiple vary lines", []string{"Accept", "Accept-Encoding, accept"}, map[string][]string{"Accept": {"a"}, "Accept-Encoding": {"gzip"}}, map[string][]string{"Accept": {"a"}, "Accept-Encoding": {"gzip"}}, true},
		{"multiple vary lines differ", []string{"Accept", "Accept-Encoding"}, map[string][]string{"Accept": {"a"}, "Accept-Encoding": {"gzip"}}, map[string][]string{"Accept": {"b"}, "Accept-Encoding": {"gzip"}}, false},
		{"unvaried header ignored", ae, map[string][]string{"Accept-Encoding": {"gzip"}, "Accept": {"a"}}, map[string][]string{"Accept-Encoding": {"gzip"}, "Accept": {"b"}}, true},
		{"star", []string{"*"}, nil, nil, false},
		{"star with names", []string{"Accept-Encoding, *"}, map[string][]string{"Accept-Encoding": {"gzip"}}, map[string][]string{"Accept-Encoding": {"gzip"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.vary != nil {
				h["Vary"] = tt.vary
			}
			fields, star := VaryFields(h)
			key := VariantKey(nil, fields, reqWith(tt.stored))
			if got := VaryMatches(fields, star, key, reqWith(tt.fresh)); got != tt.want {
				t.Errorf("VaryMatches(Vary %q, stored %q, new %q) = %v; want %v", tt.vary, tt.stored, tt.fresh, got, tt.want)
			}
		})
	}
}

// A changed Vary list must not let old variants match: keys name their
// fields, so a key built under one list differs from any under another.
func TestVaryListChange(t *testing.T) {
	r := reqWith(map[string][]string{"Accept": {"a"}, "Accept-Encoding": {"gzip"}})
	old := VariantKey(nil, []string{"Accept-Encoding"}, r)
	if VaryMatches([]string{"Accept", "Accept-Encoding"}, false, old, r) {
		t.Errorf("key under Vary: Accept-Encoding matched under Vary: Accept, Accept-Encoding")
	}
	if VaryMatches(nil, false, old, r) {
		t.Errorf("key under Vary: Accept-Encoding matched with no Vary")
	}
}

func TestVariantKeyAllocs(t *testing.T) {
	fields := []string{"Accept", "Accept-Encoding", "User-Agent"}
	r := reqWith(map[string][]string{
		"Accept":          {"text/html,  application/xhtml+xml;q=0.9"},
		"Accept-Encoding": {"gzip, deflate, br, zstd"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64)"},
	})
	buf := make([]byte, 0, 512)
	key := VariantKey(nil, fields, r)
	if n := testing.AllocsPerRun(100, func() { VariantKey(buf[:0], fields, r) }); n != 0 {
		t.Errorf("VariantKey allocs = %v; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { VaryMatches(fields, false, key, r) }); n != 0 {
		t.Errorf("VaryMatches allocs = %v; want 0", n)
	}
}

// Sorting in dst's spare capacity must also work when dst has to grow
// midway and when there are more elements than the stack array holds.
func TestVariantKeyManyElements(t *testing.T) {
	var elems []string
	for i := range 100 {
		elems = append(elems, strings.Repeat("x", i%7)+string(rune('a'+i%26)))
	}
	r1 := reqWith(map[string][]string{"Accept-Encoding": {strings.Join(elems, ",")}})
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(elems), func(i, j int) { elems[i], elems[j] = elems[j], elems[i] })
	r2 := reqWith(map[string][]string{"Accept-Encoding": {strings.Join(elems, " , ")}})
	f := []string{"Accept-Encoding"}
	k1 := VariantKey([]byte("prefix"), f, r1)
	k2 := VariantKey(make([]byte, 0, 1000), f, r2)
	if !bytes.Equal(k1[len("prefix"):], k2) {
		t.Errorf("permuted Accept-Encoding keys differ:\n%q\n%q", k1, k2)
	}
	if !bytes.HasPrefix(k1, []byte("prefix\x00v:Accept-Encoding=")) {
		t.Errorf("key = %q; want the prefix kept", k1)
	}
}

func FuzzVariantKey(f *testing.F) {
	f.Add("gzip, br", "en, fr", "a,b", uint64(1))
	f.Add(`"x , y", z`, "  ", "\x00\x01", uint64(2))
	f.Add(`"unterminated`, `a\`, ",,,", uint64(3))
	f.Add("GZIP;Q=1 , br ; q=0.5", "text/*;q=0.1", "", uint64(4))
	f.Fuzz(func(t *testing.T, ae, other, line2 string, seed uint64) {
		fields := []string{"Accept-Encoding", "X-Other"}
		r := reqWith(map[string][]string{"Accept-Encoding": {ae, line2}, "X-Other": {other}})
		k1 := VariantKey(nil, fields, r)
		k2 := VariantKey(make([]byte, 0, 3), fields, r)
		if !bytes.Equal(k1, k2) {
			t.Fatalf("VariantKey not deterministic: %q vs %q", k1, k2)
		}
		if !VaryMatches(fields, false, k1, r) {
			t.Fatalf("request does not match its own key %q", k1)
		}
		if VaryMatches(fields, true, k1, r) {
			t.Fatalf("star matched")
		}
		// Every part starts with NUL and no part has another.
		if n := bytes.Count(k1, []byte{0}); n != len(fields) {
			t.Fatalf("key %q has %d NULs; want %d", k1, n, len(fields))
		}
		// Permuting whole Accept-Encoding elements (and spreading them over
		// lines) keeps the key, as long as quoting is well formed; with
		// quotes the split points are not plain commas, so skip those.
		joined := ae + "," + line2
		if strings.ContainsAny(joined, `"`) {
			return
		}
		elems := strings.Split(joined, ",")
		rng := rand.New(rand.NewPCG(seed, seed>>1))
		rng.Shuffle(len(elems), func(i, j int) { elems[i], elems[j] = elems[j], elems[i] })
		cut := 0
		if len(elems) > 0 {
			cut = rng.IntN(len(elems) + 1)
		}
		r2 := reqWith(map[string][]string{
			"Accept-Encoding": {strings.Join(elems[:cut], " , "), strings.Join(elems[cut:], ",")},
			"X-Other":         {other},
		})
		if k3 := VariantKey(nil, fields, r2); !bytes.Equal(k1, k3) {
			t.Fatalf("permuted Accept-Encoding changed the key:\n%q\n%q\nfrom %q, %q", k1, k3, r.Header["Accept-Encoding"], r2.Header["Accept-Encoding"])
		}
	})
}

func BenchmarkVariantKey(b *testing.B) {
	fields := []string{"Accept", "Accept-Encoding", "User-Agent"}
	r := reqWith(map[string][]string{
		"Accept":          {"text/html,  application/xhtml+xml;q=0.9"},
		"Accept-Encoding": {"gzip, deflate, br, zstd"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64)"},
	})
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = VariantKey(buf[:0], fields, r)
	}
}
