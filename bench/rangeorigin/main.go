// Command rangeorigin is the origin of bench/ranges.sh: it serves one
// deterministic file of -size bytes at every path (the query is ignored)
// through http.ServeContent, so Range, If-Range and HEAD work, with a
// strong ETag and Cache-Control: public, max-age=3600. It counts the body
// bytes it sends.
//
//	/_bytes   body bytes sent so far (text; /_bytes itself not counted)
//	/_reqs    requests answered so far (text; /_bytes and /_reqs not counted)
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net/http"
	"sync/atomic"
	"time"
)

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n.Add(int64(n))
	return n, err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18100", "listen address")
	size := flag.Int("size", 64<<20, "file size in bytes")
	flag.Parse()
	if *size <= 0 {
		log.Fatalf("rangeorigin: -size must be positive, got %d", *size)
	}
	body := make([]byte, *size)
	// A deterministic, non-repeating-looking pattern (xorshift).
	x := uint64(0x9e3779b97f4a7c15)
	for i := range body {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		body[i] = byte(x)
	}
	etag := fmt.Sprintf(`"f%d"`, *size)
	mod := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var sent, reqs atomic.Int64

	mux := http.NewServeMux()
	mux.HandleFunc("/_bytes", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, sent.Load())
	})
	mux.HandleFunc("/_reqs", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, reqs.Load())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Type", "application/octet-stream")
		http.ServeContent(countingWriter{w, &sent}, r, "", mod, bytes.NewReader(body))
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
