// Command origin is the benchmark origin server: it answers every request with
// one fixed body so that the numbers measured through a proxy reflect the
// proxy, not the origin. It speaks HTTP/1.1 and cleartext HTTP/2 (prior
// knowledge) on the same port so the gateway can be measured with either
// upstream protocol.
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
	"strconv"
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
	cacheControl := []string{"no-store"}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = contentType
		h["Cache-Control"] = cacheControl
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
