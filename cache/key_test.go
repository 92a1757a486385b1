package cache

import (
	"bufio"
	"crypto/tls"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func mustKeyer(t testing.TB, o KeyOptions) *Keyer {
	t.Helper()
	k, err := NewKeyer(o)
	if err != nil {
		t.Fatalf("NewKeyer(%+v): %v", o, err)
	}
	return k
}

// rawRequest parses a request the way the server does, so Host, RawPath
// and RawQuery are what a real client would produce.
func rawRequest(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("ReadRequest(%q): %v", raw, err)
	}
	return r
}

// get builds a GET for target ("http://host/path?q" or "https://...";
// httptest sets r.TLS for https) with optional header lines "Name: value".
func get(t testing.TB, target string, headers ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header line %q", h)
		}
		r.Header.Add(name, strings.TrimPrefix(value, " "))
	}
	return r
}

func TestNewKeyerValidation(t *testing.T) {
	bad := []KeyOptions{
		{IgnoreParams: []string{""}},
		{IgnoreParams: []string{"*"}},
		{IgnoreParams: []string{"utm_*x"}},
		{IgnoreParams: []string{"*utm"}},
		{IgnoreParams: []string{"a**"}},
		{IgnoreParams: []string{"a", "a"}},
		{IgnoreParams: []string{"utm_*", "utm_*"}},
		{Headers: []string{""}},
		{Headers: []string{"Bad Header"}},
		{Headers: []string{"X-A:"}},
		{Headers: []string{"X-A=b"}},
		{Headers: []string{"x-a", "X-A"}},
		{Cookies: []string{""}},
		{Cookies: []string{"a=b"}},
		{Cookies: []string{"a;b"}},
		{Cookies: []string{"sid", "SID"}},
	}
	for _, o := range bad {
		if k, err := NewKeyer(o); err == nil {
			t.Errorf("NewKeyer(%+v) = %v, nil; want error", o, k)
		}
	}
	good := []KeyOptions{
		{},
		{IgnoreParams: []string{"utm_*", "fbclid", "a*"}, Headers: []string{"accept-language", "X-Tenant"}, Cookies: []string{"sid", "lang"}},
	}
	for _, o := range good {
		if _, err := NewKeyer(o); err != nil {
			t.Errorf("NewKeyer(%+v): %v; want nil", o, err)
		}
	}
}

// TestKeyFormat pins the exact key layout so a change to it is deliberate
// (stored entries would all miss after one).
func TestKeyFormat(t *testing.T) {
	k := mustKeyer(t, KeyOptions{
		IgnoreParams: []string{"utm_*", "fbclid"},
		Headers:      []string{"x-tenant", "accept-language"},
		Cookies:      []string{"sid", "ab"},
	})
	tests := []struct {
		name string
		r    *http.Request
		want string
	}{
		{"bare", get(t, "http://example.com/"),
			"http\x00example.com\x00/\x00\x00h:Accept-Language\x00h:X-Tenant\x00c:ab\x00c:sid"},
		{"everything", get(t, "https://Example.COM:443/a%2Fb?z=1&utm_source=x&a=2&a=1&fbclid=y",
			"X-Tenant: t1", "Accept-Language: en", "Accept-Language: fr", "Cookie: sid=s1; other=o; SID=s2", "Cookie: ab"),
			"https\x00example.com\x00/a%2Fb\x00a=2&a=1&z=1" +
				"\x00h:Accept-Language=en\x00h:Accept-Language=fr\x00h:X-Tenant=t1" +
				"\x00n:ab\x00c:sid=s1\x00c:SID=s2"},
	}
	for _, tt := range tests {
		if got := k.Key(tt.r); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
}

// TestKeyEqual lists requests that must share a key with a reference
// request (same: true) or must not (same: false).
func TestKeyEqual(t *testing.T) {
	k := mustKeyer(t, KeyOptions{
		IgnoreParams: []string{"utm_*", "fbclid"},
		Headers:      []string{"X-Tenant"},
		Cookies:      []string{"sid"},
	})
	tests := []struct {
		name string
		a, b *http.Request
		same bool
	}{
		// Query sorting and duplicates.
		{"sorted", get(t, "http://h/p?b=2&a=1&c=3"), get(t, "http://h/p?a=1&b=2&c=3"), true},
		// Origins read the first (or last) value of a repeated name.
		{"repeated name keeps its order", get(t, "http://h/p?a=2&a=1"), get(t, "http://h/p?a=1&a=2"), false},
		{"others move around a repeated name", get(t, "http://h/p?a=1&b=2&a=3"), get(t, "http://h/p?b=2&a=1&a=3"), true},
		{"one name spelled two ways keeps its order", get(t, "http://h/p?a=1&%61=2"), get(t, "http://h/p?%61=2&a=1"), false},
		{"plus is a space in names", get(t, "http://h/p?a+b=1&a%20b=2"), get(t, "http://h/p?a%20b=2&a+b=1"), false},
		{"duplicates kept", get(t, "http://h/p?a=1&a=1"), get(t, "http://h/p?a=1"), false},
		{"values differ", get(t, "http://h/p?a=1"), get(t, "http://h/p?a=2"), false},
		{"name only vs empty value", get(t, "http://h/p?a"), get(t, "http://h/p?a="), false},
		{"encoding kept: %20 vs +", get(t, "http://h/p?a=%20"), get(t, "http://h/p?a=+"), false},
		{"encoding kept: %41 vs A", get(t, "http://h/p?a=%41"), get(t, "http://h/p?a=A"), false},
		{"semicolon not a separator", get(t, "http://h/p?a=1;b=2"), get(t, "http://h/p?b=2;a=1"), false},
		// Empty query.
		{"? vs none", get(t, "http://h/p?"), get(t, "http://h/p"), true},
		{"empty pieces dropped", get(t, "http://h/p?&a=1&&"), get(t, "http://h/p?a=1"), true},
		// Ignored parameters.
		{"ignored exact", get(t, "http://h/p?a=1&fbclid=x"), get(t, "http://h/p?a=1"), true},
		{"ignored prefix", get(t, "http://h/p?utm_source=x&a=1&utm_medium=y"), get(t, "http://h/p?a=1"), true},
		{"ignored bare prefix", get(t, "http://h/p?utm_=x&a=1"), get(t, "http://h/p?a=1"), true},
		{"ignored name decoded", get(t, "http://h/p?utm%5Fsource=x&a=1"), get(t, "http://h/p?a=1"), true},
		{"ignored name no value", get(t, "http://h/p?fbclid&a=1"), get(t, "http://h/p?a=1"), true},
		{"ignore is case sensitive", get(t, "http://h/p?UTM_source=x"), get(t, "http://h/p"), false},
		{"exact is not a prefix", get(t, "http://h/p?fbclid2=x"), get(t, "http://h/p"), false},
		{"value matching is not name", get(t, "http://h/p?a=utm_x"), get(t, "http://h/p?a="), false},
		{"malformed escape kept", get(t, "http://h/p?utm%zz=1"), get(t, "http://h/p"), false},
		// Host.
		{"host case", get(t, "http://EXAMPLE.com/"), get(t, "http://example.com/"), true},
		{"http default port", get(t, "http://example.com:80/"), get(t, "http://example.com/"), true},
		{"https default port", get(t, "https://example.com:443/"), get(t, "https://example.com/"), true},
		{"http with :443", get(t, "http://example.com:443/"), get(t, "http://example.com/"), false},
		{"https with :80", get(t, "https://example.com:80/"), get(t, "https://example.com/"), false},
		{"other port", get(t, "http://example.com:8080/"), get(t, "http://example.com/"), false},
		{"ipv6 default port", get(t, "http://[::1]:80/"), get(t, "http://[::1]/"), true},
		{"trailing dot kept", get(t, "http://example.com./"), get(t, "http://example.com/"), false},
		// Scheme.
		{"scheme from TLS", get(t, "https://h/"), get(t, "http://h/"), false},
		// Path.
		{"path not decoded", get(t, "http://h/a%2Fb"), get(t, "http://h/a/b"), false},
		{"path not unescaped", get(t, "http://h/%61"), get(t, "http://h/a"), false},
		{"path not cleaned", get(t, "http://h/a/../b"), get(t, "http://h/b"), false},
		{"path trailing slash", get(t, "http://h/a/"), get(t, "http://h/a"), false},
		{"path case", get(t, "http://h/A"), get(t, "http://h/a"), false},
		// Headers.
		{"keyed header", get(t, "http://h/", "X-Tenant: a"), get(t, "http://h/", "X-Tenant: b"), false},
		{"absent vs empty header", get(t, "http://h/"), get(t, "http://h/", "X-Tenant: "), false},
		{"header values in order", get(t, "http://h/", "X-Tenant: a", "X-Tenant: b"), get(t, "http://h/", "X-Tenant: b", "X-Tenant: a"), false},
		{"two lines vs one", get(t, "http://h/", "X-Tenant: a", "X-Tenant: b"), get(t, "http://h/", "X-Tenant: a, b"), false},
		{"unkeyed header", get(t, "http://h/", "X-Other: a"), get(t, "http://h/"), true},
		// Cookies.
		{"keyed cookie", get(t, "http://h/", "Cookie: sid=1"), get(t, "http://h/", "Cookie: sid=2"), false},
		{"other cookies ignored", get(t, "http://h/", "Cookie: a=1; sid=1; b=2"), get(t, "http://h/", "Cookie: sid=1"), true},
		{"cookie spacing", get(t, "http://h/", "Cookie: sid=1;other=2"), get(t, "http://h/", "Cookie:  sid=1 ; other=2"), true},
		{"cookie lines", get(t, "http://h/", "Cookie: a=1", "Cookie: sid=1"), get(t, "http://h/", "Cookie: sid=1"), true},
		{"absent vs empty cookie", get(t, "http://h/"), get(t, "http://h/", "Cookie: sid="), false},
		{"absent vs bare cookie", get(t, "http://h/"), get(t, "http://h/", "Cookie: sid"), false},
		{"bare vs empty cookie", get(t, "http://h/", "Cookie: sid"), get(t, "http://h/", "Cookie: sid="), false},
		{"cookie duplicates in order", get(t, "http://h/", "Cookie: sid=1; sid=2"), get(t, "http://h/", "Cookie: sid=2; sid=1"), false},
		{"cookie duplicates kept", get(t, "http://h/", "Cookie: sid=1; sid=1"), get(t, "http://h/", "Cookie: sid=1"), false},
		{"cookie name case matched", get(t, "http://h/", "Cookie: SID=1"), get(t, "http://h/"), false},
		{"cookie name case kept", get(t, "http://h/", "Cookie: SID=1"), get(t, "http://h/", "Cookie: sid=1"), false},
		{"cookie name spaced", get(t, "http://h/", "Cookie: sid =1"), get(t, "http://h/"), false},
		{"cookie quotes kept", get(t, "http://h/", `Cookie: sid="1"`), get(t, "http://h/", "Cookie: sid=1"), false},
		{"cookie invalid value keyed", get(t, "http://h/", `Cookie: sid=a\b`), get(t, "http://h/"), false},
		{"cookie not a header", get(t, "http://h/", "Sid: 1"), get(t, "http://h/"), true},
	}
	for _, tt := range tests {
		ka, kb := k.Key(tt.a), k.Key(tt.b)
		if got := ka == kb; got != tt.same {
			t.Errorf("%s: same key = %v; want %v (%q vs %q)", tt.name, got, tt.same, ka, kb)
		}
	}
}

// TestKeyPoisoning checks that headers a client controls but the route
// does not key on never change the key, whatever proxies downstream might
// make of them.
func TestKeyPoisoning(t *testing.T) {
	k := mustKeyer(t, KeyOptions{Headers: []string{"Accept-Language"}, Cookies: []string{"sid"}})
	base := "GET /p?a=1 HTTP/1.1\r\nHost: example.com\r\nAccept-Language: en\r\nCookie: sid=1\r\n"
	want := k.Key(rawRequest(t, base+"\r\n"))
	for _, h := range []string{
		"X-Forwarded-Host: evil.example",
		"X-Forwarded-Proto: https",
		"X-Forwarded-Port: 443",
		"X-Forwarded-Scheme: https",
		"X-Forwarded-Prefix: /admin",
		"Forwarded: host=evil.example;proto=https",
		"X-Original-URL: /admin",
		"X-Rewrite-URL: /admin",
		"X-Original-Host: evil.example",
		"X-Host: evil.example",
		"X-HTTP-Method-Override: POST",
		"X-Accept-Language: fr",
		"Accept-Language-X: fr",
		"Sid: 2",
		"X-Cookie: sid=2",
		"Set-Cookie: sid=2",
		"Via: 1.1 evil",
	} {
		if got := k.Key(rawRequest(t, base+h+"\r\n\r\n")); got != want {
			t.Errorf("with %q: got %q; want %q", h, got, want)
		}
	}

	// The host comes from r.Host only: an absolute-form request line names
	// the host the server routes on (net/http sets r.Host from it), and
	// r.URL.Host set by some middleware is ignored.
	r := rawRequest(t, base+"\r\n")
	r.URL.Host = "evil.example"
	r.URL.Scheme = "https"
	if got := k.Key(r); got != want {
		t.Errorf("with r.URL.Host/Scheme set: got %q; want %q", got, want)
	}
	r.Host = "evil.example"
	if got := k.Key(r); got == want {
		t.Errorf("changing r.Host did not change the key %q", got)
	}
	r = rawRequest(t, base+"\r\n")
	r.TLS = &tls.ConnectionState{}
	if got := k.Key(r); got == want {
		t.Errorf("TLS did not change the key %q", got)
	}
}

// TestKeyCollisions lists pairs of different requests that must get
// different keys, chosen to shift bytes between components.
func TestKeyCollisions(t *testing.T) {
	k := mustKeyer(t, KeyOptions{Headers: []string{"X-A", "X-B"}, Cookies: []string{"c", "cd"}})
	req := func(host, path, rawPath, query string, h http.Header) *http.Request {
		if h == nil {
			h = http.Header{}
		}
		return &http.Request{Method: http.MethodGet, Host: host, Header: h,
			URL: &url.URL{Path: path, RawPath: rawPath, RawQuery: query}}
	}
	pairs := []struct {
		name string
		a, b *http.Request
	}{
		{"& in value", req("h", "/", "", "a=1&b=2", nil), req("h", "/", "", "a=1%26b=2", nil)},
		{"encoded ? in path", req("h", "/a?b", "/a%3Fb", "", nil), req("h", "/a", "", "b", nil)},
		{"path vs query", req("h", "/a", "", "b", nil), req("h", "/a\x00b", "", "", nil)},
		{"host vs path", req("h/a", "/", "", "", nil), req("h", "/a/", "", "", nil)},
		{"NUL in host", req("h\x00/a", "/", "", "", nil), req("h", "/a", "", "", nil)},
		{"NUL in query", req("h", "/", "", "a\x00h:X-A=1", nil), req("h", "/", "", "a", http.Header{"X-A": {"1"}})},
		{"escape byte", req("h", "/", "", "a\x01\x30", nil), req("h", "/", "", "a\x00", nil)},
		{"NUL in header value", req("h", "/", "", "", http.Header{"X-A": {"1\x00h:X-B=2"}}),
			req("h", "/", "", "", http.Header{"X-A": {"1"}, "X-B": {"2"}})},
		{"value moves between headers", req("h", "/", "", "", http.Header{"X-A": {"1", "2"}}),
			req("h", "/", "", "", http.Header{"X-A": {"1"}, "X-B": {"2"}})},
		{"comma joined", req("h", "/", "", "", http.Header{"X-A": {"1,2"}}),
			req("h", "/", "", "", http.Header{"X-A": {"1", "2"}})},
		{"header vs cookie", req("h", "/", "", "", http.Header{"X-A": {"v"}}),
			req("h", "/", "", "", http.Header{"Cookie": {"c=v"}})},
		{"cookie name prefix", req("h", "/", "", "", http.Header{"Cookie": {"c=d=1"}}),
			req("h", "/", "", "", http.Header{"Cookie": {"cd=1"}})},
		{"NUL in cookie", req("h", "/", "", "", http.Header{"Cookie": {"c=1\x00c:cd=2"}}),
			req("h", "/", "", "", http.Header{"Cookie": {"c=1; cd=2"}})},
		{"query piece boundary", req("h", "/", "", "a=1&a=2", nil), req("h", "/", "", "a=1%26a%3D2", nil)},
		{"empty host", req("", "/", "", "", nil), req("h", "/", "", "", nil)},
	}
	for _, p := range pairs {
		ka, kb := k.Key(p.a), k.Key(p.b)
		if ka == kb {
			t.Errorf("%s: both requests have key %q", p.name, ka)
		}
	}
}

func TestAppendKeyMatchesKey(t *testing.T) {
	k := mustKeyer(t, KeyOptions{IgnoreParams: []string{"utm_*"}, Headers: []string{"X-A"}, Cookies: []string{"s"}})
	r := get(t, "https://h/p?b=1&a=2&utm_x=3", "X-A: 1", "Cookie: s=2")
	prefix := []byte("prefix")
	got := k.AppendKey(prefix, r)
	if want := "prefix" + k.Key(r); string(got) != want {
		t.Errorf("AppendKey: got %q; want %q", got, want)
	}
}

// TestKeyManyParams covers the heap path for queries longer than the
// stack array, and sorting of many pieces.
func TestKeyManyParams(t *testing.T) {
	k := mustKeyer(t, KeyOptions{IgnoreParams: []string{"utm_*"}})
	var parts []string
	for i := range 200 {
		parts = append(parts, "p"+strings.Repeat("x", i%7)+"="+string(rune('a'+i%26)))
		if i%10 == 0 {
			parts = append(parts, "utm_"+strings.Repeat("y", 100)+"=1") // name longer than the stack buffer
		}
	}
	want := k.Key(get(t, "http://h/?"+strings.Join(parts, "&")))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffleNames(rng, parts)
		if got := k.Key(get(t, "http://h/?"+strings.Join(parts, "&"))); got != want {
			t.Fatalf("shuffled query: got %q; want %q", got, want)
		}
	}
	if strings.Contains(want, "utm_") {
		t.Errorf("long ignored names kept: %q", want)
	}
}

func TestKeyAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	k := mustKeyer(t, KeyOptions{IgnoreParams: []string{"utm_*", "fbclid"}, Headers: []string{"X-A"}, Cookies: []string{"sid"}})
	r := get(t, "https://example.com/api/items?limit=50&page=2&utm_source=x&sort=name", "X-A: 1", "Cookie: a=1; sid=2")
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = k.AppendKey(buf[:0], r) }); n != 0 {
		t.Errorf("AppendKey: got %v allocs; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = k.Key(r) }); n > 1 {
		t.Errorf("Key: got %v allocs; want <= 1", n)
	}
}

// fuzzKeyer is the configuration FuzzKey checks against.
func fuzzKeyer(t testing.TB) *Keyer {
	return mustKeyer(t, KeyOptions{IgnoreParams: []string{"utm_*", "fbclid"}, Headers: []string{"X-Variant"}})
}

func FuzzKey(f *testing.F) {
	seeds := [][4]string{
		{"example.com", "/", "", ""},
		{"EXAMPLE.com:80", "/a/b", "b=2&a=1&a=1", "v"},
		{"h:443", "/a%2Fb", "utm_source=x&fbclid=y&z", ""},
		{"[::1]:80", "/a?b", "a=1%26b=2", "x\x00h:y"},
		{"h", "/", "&&a=&a&;", "\x01\x00"},
		{"h\x00", "/\x00", "utm%5Fx=1&utm%zz=2&+=+", "a, b"},
		{"", "", "a=%20&a=+", " "},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	k := fuzzKeyer(f)
	f.Fuzz(func(t *testing.T, host, path, query, hval string) {
		mk := func(q string) *http.Request {
			return &http.Request{Method: http.MethodGet, Host: host,
				URL:    &url.URL{Path: path, RawQuery: q},
				Header: http.Header{"X-Variant": {hval}}}
		}
		r := mk(query)
		key := k.Key(r)
		if again := k.Key(mk(query)); again != key {
			t.Fatalf("not deterministic: %q then %q", key, again)
		}
		if got := string(k.AppendKey(nil, r)); got != key {
			t.Fatalf("AppendKey %q != Key %q", got, key)
		}

		// Moving the '&'-separated pieces keeps the key, as long as the
		// pieces of one name keep their order.
		pieces := strings.Split(query, "&")
		seed := uint64(len(query))*31 + uint64(len(host))
		shuffleNames(rand.New(rand.NewPCG(seed, 7)), pieces)
		if got := k.Key(mk(strings.Join(pieces, "&"))); got != key {
			t.Fatalf("permuted query %q: got %q; want %q", strings.Join(pieces, "&"), got, key)
		}

		// Unkeyed, client-controlled headers never change it.
		r2 := mk(query)
		r2.Header.Set("X-Forwarded-Host", hval+"evil")
		r2.Header.Set("X-Forwarded-Proto", "https")
		r2.Header.Set("Forwarded", "host="+host)
		if got := k.Key(r2); got != key {
			t.Fatalf("X-Forwarded-Host changed key: got %q; want %q", got, key)
		}

		// The key decodes back to its inputs, so distinct inputs get
		// distinct keys (no bytes shift between components).
		checkDecodes(t, key, r)
	})
}

// shuffleNames shuffles query pieces but keeps the order of the pieces
// of each name (decoded as the origin decodes it), which the key keeps.
func shuffleNames(rng *rand.Rand, pieces []string) {
	// The name with '+' and each well-formed %XX decoded; a malformed
	// escape stays as it is (url.QueryUnescape would reject it whole).
	name := func(p string) string {
		n, _, _ := strings.Cut(p, "=")
		var b []byte
		for i := 0; i < len(n); i++ {
			switch {
			case n[i] == '+':
				b = append(b, ' ')
			case n[i] == '%' && i+2 < len(n):
				if v, err := strconv.ParseUint(n[i+1:i+3], 16, 8); err == nil && n[i+1] != '+' && n[i+1] != '-' {
					b = append(b, byte(v))
					i += 2
					continue
				}
				b = append(b, n[i])
			default:
				b = append(b, n[i])
			}
		}
		return string(b)
	}
	byName := map[string][]string{}
	for _, p := range pieces {
		byName[name(p)] = append(byName[name(p)], p)
	}
	rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
	for i, p := range pieces {
		n := name(p)
		pieces[i] = byName[n][0]
		byName[n] = byName[n][1:]
	}
}

// checkDecodes splits key on NUL, reverses the component escaping and
// compares each component with what it was built from.
func checkDecodes(t *testing.T, key string, r *http.Request) {
	t.Helper()
	comps := strings.Split(key, "\x00")
	for i, c := range comps {
		comps[i] = unescapeComponent(t, c)
	}
	if len(comps) != 5 {
		t.Fatalf("key %q: got %d components; want 5", key, len(comps))
	}
	host := asciiLower(strings.TrimSuffix(r.Host, ":80"))
	if comps[0] != "http" || comps[1] != host {
		t.Fatalf("key %q: scheme/host %q %q; want http %q", key, comps[0], comps[1], host)
	}
	if comps[2] != r.URL.EscapedPath() {
		t.Fatalf("key %q: path %q; want %q", key, comps[2], r.URL.EscapedPath())
	}
	var kept []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		if p == "" {
			continue
		}
		name, _, _ := strings.Cut(p, "=")
		if dec, err := url.QueryUnescape(name); err == nil &&
			(strings.HasPrefix(dec, "utm_") || dec == "fbclid") {
			continue
		}
		kept = append(kept, p)
	}
	var got []string
	if comps[3] != "" {
		got = strings.Split(comps[3], "&")
	}
	slices.Sort(kept)
	gotSorted := slices.Clone(got)
	slices.Sort(gotSorted)
	if !slices.Equal(gotSorted, kept) {
		t.Fatalf("key %q: query pieces %q; want %q", key, got, kept)
	}
	if want := "h:X-Variant=" + r.Header.Get("X-Variant"); comps[4] != want {
		t.Fatalf("key %q: header part %q; want %q", key, comps[4], want)
	}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func unescapeComponent(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != escByte {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			t.Fatalf("dangling escape in %q", s)
		}
		i++
		switch s[i] {
		case '0':
			b.WriteByte(0)
		case '1':
			b.WriteByte(escByte)
		default:
			t.Fatalf("bad escape in %q", s)
		}
	}
	return b.String()
}

func BenchmarkKey(b *testing.B) {
	k := mustKeyer(b, KeyOptions{IgnoreParams: []string{"utm_*", "fbclid"}})
	r := get(b, "https://api.example.com/v1/items?page=2&limit=50&sort=name")
	b.Run("Key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = k.Key(r)
		}
	})
	b.Run("AppendKey", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = k.AppendKey(buf[:0], r)
		}
	})
}
