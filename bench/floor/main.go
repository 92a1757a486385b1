// Command floor is the least work any proxy built on net/http can do per
// request, measured next to the gateway to show what part of its cost is
// net/http's own. On the client side it is net/http's server, as the
// gateway's is (HTTP/1.1 and h2c). On the upstream side it skips
// everything a real proxy must do: it forwards no header, checks
// nothing, and writes the same prepared request bytes on a pooled
// keep-alive connection; it reads the answer with http.ReadResponse and
// copies the body to the client. With -upstream h2c it sends the request
// through net/http's Transport speaking h2c instead, the least an HTTP/2
// upstream leg can cost on net/http. A proxy on net/http cannot spend
// less CPU per request than this.
package main

import (
	"bufio"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

type upConn struct {
	c  net.Conn
	br *bufio.Reader
}

type floor struct {
	addr string
	req  []byte
	h2c  *http.Transport // nil: raw HTTP/1.1 connections
	mu   sync.Mutex
	idle []*upConn
	bufs sync.Pool
}

func (f *floor) get() (*upConn, error) {
	f.mu.Lock()
	if n := len(f.idle); n > 0 {
		c := f.idle[n-1]
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return c, nil
	}
	f.mu.Unlock()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

func (f *floor) put(c *upConn) {
	f.mu.Lock()
	f.idle = append(f.idle, c)
	f.mu.Unlock()
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.h2c != nil {
		f.serveH2C(w, r)
		return
	}
	c, err := f.get()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if _, err := c.c.Write(f.req); err != nil {
		c.c.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.c.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	err = f.copy(w, resp)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.c.Close()
		return
	}
	f.put(c)
}

// copy sends resp's status, its two content fields and its body.
func (f *floor) copy(w http.ResponseWriter, resp *http.Response) error {
	h := w.Header()
	h["Content-Type"] = resp.Header["Content-Type"]
	h["Cache-Control"] = resp.Header["Cache-Control"]
	if resp.ContentLength >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	buf := f.bufs.Get().(*[]byte)
	// Hiding w's ReadFrom keeps io.CopyBuffer from handing the copy to
	// net/http's response.ReadFrom, which flushes the first 512 bytes and
	// the headers on their own and so writes one response in two or three
	// syscalls. ReverseProxy copies through Write too.
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, resp.Body, *buf)
	f.bufs.Put(buf)
	return err
}

func (f *floor) serveH2C(w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+f.addr+"/", nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := f.h2c.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	f.copy(w, resp)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18005", "listen address")
	to := flag.String("to", "127.0.0.1:18000", "upstream host:port")
	upstream := flag.String("upstream", "http1", "upstream protocol: http1 or h2c (prior knowledge)")
	flag.Parse()

	f := &floor{
		addr: *to,
		req:  []byte("GET / HTTP/1.1\r\nHost: " + *to + "\r\n\r\n"),
		bufs: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }},
	}
	switch *upstream {
	case "http1":
	case "h2c":
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		f.h2c = &http.Transport{Protocols: &p}
	default:
		log.Fatalf("floor: -upstream %q: want http1 or h2c", *upstream)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Addr:              *addr,
		Handler:           f,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}
