package entrypoint

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestStallWriterPerConnection: the requests of one HTTP/1 connection
// share the connection's stall writer, which lets go of each response
// once its handler returns, and still reaches the server's writer
// (http.ResponseController) for the handlers that need it.
func TestStallWriterPerConnection(t *testing.T) {
	type seen struct {
		conn     *clientConn
		w        http.ResponseWriter
		released bool
	}
	got := make(chan seen, 2)
	var innerW http.ResponseWriter // set and read on the connection's goroutine
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		innerW = w
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the stall writer: %v", err)
		}
		io.WriteString(w, "ok")
	})
	h := withIOTimeouts(inner, time.Minute, time.Minute)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := h1Conn(r)
		h.ServeHTTP(w, r)
		if c != nil && innerW != http.ResponseWriter(&c.stall) {
			t.Errorf("the handler got %T %p; want the connection's stall writer", innerW, innerW)
		}
		got <- seen{conn: c, w: innerW, released: c != nil && c.stall.ResponseWriter == nil}
	})
	g := serve(t, outer, Options{Address: "127.0.0.1:0"})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	url := "http://" + g.Addrs()[0].String() + "/"
	var first seen
	for i := range 2 {
		resp, body := fetch(t, c, url)
		if resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		s := <-got
		if s.conn == nil {
			t.Fatalf("request %d: not served on a clientConn", i)
		}
		if !s.released {
			t.Errorf("request %d: the connection's stall writer still holds the response after the handler", i)
		}
		if i == 0 {
			first = s
		} else if s.conn != first.conn || s.w != first.w {
			t.Errorf("second request on the connection: conn %p writer %p; want %p %p", s.conn, s.w, first.conn, first.w)
		}
	}
}
