package entrypoint

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// deepStack uses about as much stack as a request proxied through the
// gateway does (some 10 KiB, more than a new goroutine's 8 KiB), in
// frames of 1 KiB.
//
//go:noinline
func deepStack(n int) byte {
	var b [1 << 10]byte
	b[n] = byte(n)
	if n == 0 {
		return b[0]
	}
	return deepStack(n-1) + b[n]
}

// BenchmarkH2CStream is a GET over h2c whose handler needs a stack
// about as deep as the proxy's: what each HTTP/2 stream costs the
// entrypoint, its handler goroutine's stack growth included.
func BenchmarkH2CStream(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if deepStack(10) == 255 {
			w.WriteHeader(http.StatusTeapot)
		}
		io.WriteString(w, "ok")
	})
	g := serve(b, h, Options{Address: "127.0.0.1:0", H2C: true})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	url := "http://" + g.Addrs()[0].String() + "/"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkHTTP1Timeouts is a GET over HTTP/1.1 on a listener with
// read and write timeouts, as the gateway's default listener has:
// net/http's server and the entrypoint's wrappers, stall timeouts
// included.
func BenchmarkHTTP1Timeouts(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	g := serve(b, h, Options{Address: "127.0.0.1:0", ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	tr := &http.Transport{}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	url := "http://" + g.Addrs()[0].String() + "/"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
