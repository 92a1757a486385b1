// Command origin is the benchmark origin server. By default it answers every
// request with one fixed body so that the numbers measured through a proxy
// reflect the proxy, not the origin. It speaks HTTP/1.1 and cleartext HTTP/2
// (prior knowledge) on the same port so the gateway can be measured with
// either upstream protocol.
//
// Endpoints (everything not listed gets the fixed -size body with
// Cache-Control: no-store, e.g. / and /nostore?i=N):
//
//	/cacheable/N      N body bytes (0 <= N <= 64 MiB), Cache-Control: public,
//	                  max-age=3600, a strong ETag; If-None-Match gets a 304
//	/catalog/N        a product catalogue as JSON of exactly N bytes (64 <= N <=
//	                  64 MiB): an array of objects with ids, SKUs, names,
//	                  prices, tags, generated deterministically, so it
//	                  compresses like real API output (gzip -6 about 5:1)
//	                  rather than like one repeated byte. Identity encoding,
//	                  Cache-Control: public, max-age=3600, a strong ETag;
//	                  If-None-Match gets a 304
//	/slow?ms=M        sleeps M ms (default 200, at most 60000), then answers
//	                  1 KiB with Cache-Control: public, max-age=3600; with
//	                  nostore=1, Cache-Control: no-store. Counted per request URI.
//	/_count?uri=U     how many /slow requests had request URI U (text)
//	/_count           how many requests this origin answered in total (text;
//	                  /_count itself not included)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18000", "listen address")
	size := flag.Int("size", 1024, "response body size in bytes")
	flag.Parse()
	if *size < 0 {
		log.Fatalf("origin: -size must be >= 0, got %d", *size)
	}

	body := makeBody(*size)
	// Header values are built once; per-request work is only copying them
	// into the response map, which keeps the origin cheap next to the proxy.
	contentLength := []string{strconv.Itoa(len(body))}
	contentType := []string{"application/json"}
	noStore := []string{"no-store"}

	var total atomic.Int64
	slow := newSlowCounter()

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/_count":
			w.Header().Set("Cache-Control", "no-store")
			if uri, ok := r.URL.Query()["uri"]; ok {
				_, _ = fmt.Fprintln(w, slow.get(uri[0]))
			} else {
				_, _ = fmt.Fprintln(w, total.Load())
			}
			return
		case strings.HasPrefix(p, "/cacheable/"):
			total.Add(1)
			cacheables.serve(w, r, strings.TrimPrefix(p, "/cacheable/"))
			return
		case strings.HasPrefix(p, "/catalog/"):
			total.Add(1)
			catalogs.serve(w, r, strings.TrimPrefix(p, "/catalog/"))
			return
		case p == "/slow":
			total.Add(1)
			slow.add(r.RequestURI)
			serveSlow(w, r)
			return
		}
		total.Add(1)
		h := w.Header()
		h["Content-Type"] = contentType
		h["Cache-Control"] = noStore
		h["Content-Length"] = contentLength
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})

	// Protocols (Go 1.24+) serves h2c prior knowledge next to HTTP/1.1
	// without the x/net h2c wrapper.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)

	srv := &http.Server{
		Addr:              *addr,
		Handler:           handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// The load generators open at most a few hundred streams; the default
		// of 250 concurrent streams per connection is enough, but a gateway
		// multiplexing many clients over few upstream connections must not be
		// throttled by the origin, so allow more.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 1000},
		// Discard the server's own error log: under load, client resets are
		// routine and logging them would cost CPU on the origin's core.
		ErrorLog: log.New(discard{}, "", 0),
	}
	log.Printf("origin: listening on %s, body %d bytes", *addr, len(body))
	log.Fatal(srv.ListenAndServe())
}

// cacheable is one /cacheable/N answer, built once per size.
type cacheable struct {
	body          []byte
	etag          string
	contentLength []string
	etagHeader    []string
}

var (
	cacheableCC = []string{"public, max-age=3600"}
	jsonType    = []string{"application/json"}
)

const maxCacheable = 64 << 20

// family is a set of cacheable documents, one per size, built on first
// use: /cacheable/N (filler bytes) and /catalog/N (product JSON).
type family struct {
	name string // the path segment, also the ETag's prefix
	min  int
	make func(n int) []byte
	mu   sync.RWMutex
	by   map[int]*cacheable
}

var (
	cacheables = &family{name: "cacheable", min: 0, make: makeBody, by: map[int]*cacheable{}}
	catalogs   = &family{name: "catalog", min: minCatalog, make: makeCatalog, by: map[int]*cacheable{}}
)

func (f *family) get(n int) *cacheable {
	f.mu.RLock()
	c := f.by[n]
	f.mu.RUnlock()
	if c != nil {
		return c
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c = f.by[n]; c != nil {
		return c
	}
	b := f.make(n)
	h := fnv.New64a()
	_, _ = h.Write(b)
	etag := fmt.Sprintf(`"%s%d-%016x"`, f.name[:3], n, h.Sum64())
	c = &cacheable{
		body:          b,
		etag:          etag,
		contentLength: []string{strconv.Itoa(len(b))},
		etagHeader:    []string{etag},
	}
	f.by[n] = c
	return c
}

// serve answers /NAME/N: the document, or 304 to a matching If-None-Match.
func (f *family) serve(w http.ResponseWriter, r *http.Request, sizeText string) {
	n, err := strconv.Atoi(sizeText)
	if err != nil || n < f.min || n > maxCacheable {
		http.Error(w, fmt.Sprintf("want /%s/N with %d <= N <= %d", f.name, f.min, maxCacheable), http.StatusNotFound)
		return
	}
	c := f.get(n)
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = cacheableCC
	h["Etag"] = c.etagHeader
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, c.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = c.contentLength
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(c.body)
	}
}

// etagMatches is the weak comparison of If-None-Match (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func serveSlow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ms := 200
	if v := q.Get("ms"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 60000 {
			http.Error(w, "ms must be 0..60000", http.StatusBadRequest)
			return
		}
		ms = n
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return
	}
	c := cacheables.get(1024)
	h := w.Header()
	h["Content-Type"] = jsonType
	if q.Get("nostore") == "1" {
		h.Set("Cache-Control", "no-store")
	} else {
		h["Cache-Control"] = cacheableCC
		h["Etag"] = c.etagHeader
	}
	h["Content-Length"] = c.contentLength
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(c.body)
	}
}

// slowCounter counts /slow requests per request URI, so the stampede
// benchmark can ask how many requests a proxy let through for one URL.
type slowCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

func newSlowCounter() *slowCounter { return &slowCounter{n: map[string]int64{}} }

func (c *slowCounter) add(uri string) {
	c.mu.Lock()
	c.n[uri]++
	c.mu.Unlock()
}

func (c *slowCounter) get(uri string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[uri]
}

// makeBody returns a valid JSON document of exactly n bytes (when n >= 12; smaller sizes get spaces),
// so clients that inspect the Content-Type see what it claims.
func makeBody(n int) []byte {
	const prefix, suffix = `{"data":"`, `"}`
	if n < len(prefix)+len(suffix)+1 {
		return bytes.Repeat([]byte(" "), n)
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	b = append(b, bytes.Repeat([]byte("x"), n-len(prefix)-len(suffix)-1)...)
	b = append(b, suffix...)
	b = append(b, '\n')
	return b
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ---------------------------------------------------------------- /catalog/N

const minCatalog = 64

// Word lists for the catalogue. Names, SKUs and numbers vary per item
// while keys and vocabulary repeat, as in a real product API.
var (
	catAdjectives = []string{"Walnut", "Compact", "Classic", "Ergonomic", "Wireless", "Vintage", "Modular", "Foldable",
		"Premium", "Rugged", "Slim", "Smart", "Oak", "Steel", "Ceramic", "Bamboo", "Linen", "Matte", "Portable", "Quiet"}
	catNouns = []string{"Desk Lamp", "Office Chair", "Bookshelf", "Coffee Grinder", "Kettle", "Headphones", "Backpack",
		"Water Bottle", "Standing Desk", "Monitor Arm", "Keyboard", "Throw Blanket", "Plant Pot", "Wall Clock",
		"Cutting Board", "Speaker", "Notebook", "Pen Set", "Table Runner", "Floor Rug"}
	catCategories = []string{"lighting", "furniture", "kitchen", "audio", "bags", "outdoor", "office", "textiles", "garden", "decor"}
	catBrands     = []string{"Nordhaus", "Kettleby", "Arbor & Co", "Lumen Works", "Fjell", "Casa Prima", "Oakridge", "Tidewater"}
	catCurrencies = []string{"EUR", "USD", "GBP"}
	catTags       = []string{"new", "sale", "eco", "bestseller", "limited", "handmade", "wood", "led", "recycled",
		"gift", "bundle", "outdoor", "compact", "premium", "refurbished", "clearance"}
	catColors     = []string{"black", "white", "oak", "walnut", "slate", "sage", "sand", "navy", "terracotta"}
	catWarehouses = []string{"AMS-1", "FRA-2", "DUB-1", "WAW-3", "MAD-1"}
)

// catalogRand is a fixed-seed xorshift64* generator: the same N always
// yields the same document (and ETag), on every run and machine.
type catalogRand uint64

func (r *catalogRand) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = catalogRand(x)
	return x * 2685821657736338717
}

func (r *catalogRand) intn(n int) int { return int(r.next() % uint64(n)) }

// catalogItem appends one product object.
func catalogItem(b []byte, rnd *catalogRand, i int) []byte {
	adj, noun := catAdjectives[rnd.intn(len(catAdjectives))], catNouns[rnd.intn(len(catNouns))]
	cat := catCategories[rnd.intn(len(catCategories))]
	b = fmt.Appendf(b, `{"id":%d,"sku":"%c%c%c-%05d-%c","name":"%s %s","category":"%s","brand":"%s",`,
		100000+i*7+rnd.intn(7), 'A'+rnd.intn(26), 'A'+rnd.intn(26), 'A'+rnd.intn(26), rnd.intn(100000), 'A'+rnd.intn(6),
		adj, noun, cat, catBrands[rnd.intn(len(catBrands))])
	price := 299 + rnd.intn(50000)
	b = fmt.Appendf(b, `"price":{"amount":%d.%02d,"currency":"%s"},`, price/100, []int{0, 49, 90, 95, 99}[rnd.intn(5)],
		catCurrencies[rnd.intn(len(catCurrencies))])
	if rnd.intn(4) == 0 {
		b = fmt.Appendf(b, `"discount_pct":%d,`, 5*(1+rnd.intn(8)))
	}
	b = fmt.Appendf(b, `"stock":%d,"rating":%d.%d,"reviews":%d,"tags":[`, rnd.intn(500), 1+rnd.intn(4), rnd.intn(10), rnd.intn(5000))
	for t, nt := 0, 1+rnd.intn(3); t < nt; t++ {
		if t > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"%s"`, catTags[rnd.intn(len(catTags))])
	}
	b = fmt.Appendf(b, `],"color":"%s","dimensions_cm":{"w":%d,"h":%d,"d":%d},"weight_kg":%d.%d,`,
		catColors[rnd.intn(len(catColors))], 5+rnd.intn(195), 5+rnd.intn(195), 5+rnd.intn(95), rnd.intn(40), rnd.intn(10))
	b = fmt.Appendf(b, `"warehouse":"%s","updated_at":"2024-%02d-%02dT%02d:%02d:%02dZ","active":%t}`,
		catWarehouses[rnd.intn(len(catWarehouses))], 1+rnd.intn(12), 1+rnd.intn(28), rnd.intn(24), rnd.intn(60), rnd.intn(60),
		rnd.intn(10) != 0)
	return b
}

// makeCatalog returns {"items":[...],"count":K} padded with spaces before
// the closing bracket to exactly n bytes (n >= minCatalog), ending in a
// newline.
func makeCatalog(n int) []byte {
	rnd := catalogRand(0x9E3779B97F4A7C15)
	b := make([]byte, 0, n+512)
	b = append(b, `{"items":[`...)
	var item []byte
	for i := 0; ; i++ {
		item = catalogItem(item[:0], &rnd, i)
		// The suffix for one more item bounds the real one from above.
		sep := 0
		if i > 0 {
			sep = 1
		}
		if len(b)+sep+len(item)+len(catalogSuffix(i+1)) > n {
			suffix := catalogSuffix(i)
			b = append(b, bytes.Repeat([]byte(" "), n-len(b)-len(suffix))...)
			return append(b, suffix...)
		}
		if sep == 1 {
			b = append(b, ',')
		}
		b = append(b, item...)
	}
}

func catalogSuffix(count int) string { return fmt.Sprintf("],\"count\":%d}\n", count) }
