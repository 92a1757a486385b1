package entrypoint

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gatherBody is n bytes that tell where each one belongs, so that bytes
// sent out of order or twice show.
func gatherBody(n int) []byte {
	b := make([]byte, 0, n+10)
	for i := 0; len(b) < n; i++ {
		b = strconv.AppendInt(b, int64(i), 36)
		b = append(b, ' ')
	}
	return b[:n]
}

// TestGatherWrites: a response written between GatherWrites(true) and
// (false), of any size around net/http's buffers, with its length or
// chunked, reaches a client intact and in order, as do the responses
// pipelined after it on the connection; a handler that leaves
// gathering on still sends all of its response.
func TestGatherWrites(t *testing.T) {
	engaged := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		g, ok := w.(interface{ GatherWrites(on bool) })
		if !ok {
			t.Errorf("the handler's writer %T has no GatherWrites", w)
			return
		}
		g.GatherWrites(true)
		select {
		case engaged <- h1Conn(r) != nil && h1Conn(r).g != nil:
		default:
		}
		if r.URL.Query().Get("length") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		w.WriteHeader(http.StatusOK)
		w.Write(gatherBody(n))
		if r.URL.Query().Get("leave") == "" {
			g.GatherWrites(false)
		}
	})
	g := serve(t, h, Options{Address: "127.0.0.1:0", WriteTimeout: time.Minute})
	if !<-engagedAfter(t, g, engaged) {
		t.Fatal("GatherWrites(true) did not gather on a plain HTTP/1 connection")
	}

	var reqs []string
	for _, n := range []int{0, 1, 2048, 2049, 3700, 4095, 4096, 4097, 6000, 8192, 8193, 12271, 65536, 1 << 20} {
		for _, q := range []string{"", "&length=1", "&length=1&leave=1", "&leave=1"} {
			reqs = append(reqs, fmt.Sprintf("n=%d%s", n, q))
		}
	}
	c, err := net.Dial("tcp", g.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// All of them at once, pipelined: a response held back would hold
	// up the ones after it.
	var out bytes.Buffer
	for _, q := range reqs {
		fmt.Fprintf(&out, "GET /?%s HTTP/1.1\r\nHost: x\r\n\r\n", q)
	}
	go c.Write(out.Bytes())
	c.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	for _, q := range reqs {
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading the body: %v", q, err)
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(q, "&", 2)[0], "n="))
		if want := gatherBody(n); !bytes.Equal(body, want) {
			t.Errorf("%s: got %d bytes (%.40q...); want %d bytes (%.40q...)", q, len(body), body, len(want), want)
		}
	}
}

// engagedAfter makes one request to g and returns engaged, which the
// handler has then filled.
func engagedAfter(t *testing.T, g *Group, engaged chan bool) chan bool {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, body := fetch(t, &http.Client{Transport: tr}, "http://"+g.Addrs()[0].String()+"/?n=5000")
	if resp.StatusCode != http.StatusOK || body != string(gatherBody(5000)) {
		t.Fatalf("first request: %d, %d bytes", resp.StatusCode, len(body))
	}
	return engaged
}

// TestGatherWritesOff: a stall writer without an HTTP/1 connection
// (HTTP/2, HTTP/3) takes GatherWrites as a no-op, and a connection that
// is not plain TCP does not gather.
func TestGatherWritesOff(t *testing.T) {
	s := &stallWriter{}
	s.GatherWrites(true)
	s.GatherWrites(false)
	c := &clientConn{Conn: &net.UnixConn{}}
	c.startGather()
	if c.g != nil {
		t.Error("a connection that is not TCP gathers")
	}
}
