package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkH1Transport measures one exchange through h1Transport on a
// kept-alive loopback connection: a GET, and a POST of a 1 KiB body,
// which goes through the body writer goroutine. The upstream is a raw
// loopback server answering "ok", so the allocations reported are mostly
// the transport's and net/http's parsing.
func BenchmarkH1Transport(b *testing.B) {
	u := h1BenchServer(b)
	payload := bytes.Repeat([]byte("x"), 1<<10)
	for _, bb := range []struct {
		name string
		body []byte
	}{
		{"get", nil},
		{"post", payload},
	} {
		b.Run(bb.name, func(b *testing.B) {
			tr := &h1Transport{
				dial:        (&net.Dialer{}).DialContext,
				maxIdle:     64,
				idleTimeout: time.Minute,
				now:         time.Now,
			}
			b.Cleanup(tr.closeIdle)
			method := http.MethodGet
			if bb.body != nil {
				method = http.MethodPost
			}
			req := h1NewRequest(b, context.Background(), method, u+"/object", nil)
			var rd bytes.Reader
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if bb.body != nil {
					rd.Reset(bb.body)
					req.Body = io.NopCloser(&rd)
					req.ContentLength = int64(len(bb.body))
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.ReadFull(resp.Body, buf[:2])
				if err == nil {
					_, err = resp.Body.Read(buf)
				}
				resp.Body.Close()
				if err != io.EOF || resp.StatusCode != http.StatusOK || n != 2 {
					b.Fatalf("%s: got %d, %d bytes, %v; want 200, 2 bytes, EOF", method, resp.StatusCode, n, err)
				}
			}
		})
	}
}

// h1BenchServer is a keep-alive upstream on loopback that reads each
// request and its body and answers 200 "ok"; it returns its base URL.
func h1BenchServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				h1KeepAlive(c, bufio.NewReader(c), func(*http.Request) string {
					return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
				})
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}
