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
	benchH2C(b, Options{Address: "127.0.0.1:0", H2C: true})
}

// BenchmarkH2CTimeouts is BenchmarkH2CStream on a listener with read
// and write timeouts, as the gateway's default listener has.
func BenchmarkH2CTimeouts(b *testing.B) {
	benchH2C(b, Options{Address: "127.0.0.1:0", H2C: true, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
}

func benchH2C(b *testing.B, o Options) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if deepStack(10) == 255 {
			w.WriteHeader(http.StatusTeapot)
		}
		io.WriteString(w, "ok")
	})
	g := serve(b, h, o)
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

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkStallWriter is what the write stall timeout costs a small
// response, without the sockets: the wrapper, its WriteHeader and one
// Write, none of which moves the deadline.
func BenchmarkStallWriter(b *testing.B) {
	body := make([]byte, 1024)
	h := withIOTimeouts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), time.Minute, time.Minute)
	w := &nopWriter{h: http.Header{}}
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkAltSvc is what advertising HTTP/3 costs a response: the
// Alt-Svc field set in front of the handler.
func BenchmarkAltSvc(b *testing.B) {
	h := withHooks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		Options{AltSvc: func() string { return `h3=":443"; ma=86400` }})
	w := &nopWriter{h: http.Header{}}
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
