package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sizedReader produces n bytes without holding them: the upload test must
// not be the one that keeps the body in memory.
type sizedReader struct{ n int64 }

func (r *sizedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestLargeUploadStreams sends a body far larger than any buffer through
// the gateway: the upstream must get every byte, and the process must not
// allocate anything like the body's size on the way.
func TestLargeUploadStreams(t *testing.T) {
	checkLeaks(t)
	// 1 GiB takes about 5s under -race on two cores; -short keeps it
	// quick.
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	}))
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
	gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})
	c := newClient(t)

	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			req, err := http.NewRequest("PUT", gw.URL+"/blob", &sizedReader{n: size})
			if err != nil {
				t.Fatal(err)
			}
			if !chunked {
				req.ContentLength = size
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("PUT: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)

			if resp.StatusCode != http.StatusOK || string(b) != strconv.FormatInt(size, 10) {
				t.Errorf("PUT %d bytes: got %d %q; want 200 %q", size, resp.StatusCode, b, strconv.FormatInt(size, 10))
			}
			// TotalAlloc counts every allocation, freed or not, in the
			// client, the gateway and the upstream alike.
			const budget = 64 << 20
			t.Logf("allocated %d KiB, heap in use %+d KiB", (after.TotalAlloc-before.TotalAlloc)>>10, (int64(after.HeapInuse)-int64(before.HeapInuse))>>10)
			if d := after.TotalAlloc - before.TotalAlloc; d > budget {
				t.Errorf("allocated %d MiB while streaming %d MiB; want under %d MiB", d>>20, size>>20, budget>>20)
			}
		})
	}
}

// TestStreamedEvents proves the gateway flushes each event as it comes:
// the upstream sends the second event only after the client has read the
// first through the gateway, so buffering would deadlock (and time out).
// An event stream is flushed by type; a streamed NDJSON body, which has
// no length either, must be too.
func TestStreamedEvents(t *testing.T) {
	checkLeaks(t)
	for _, ct := range []string{"text/event-stream", "application/x-ndjson"} {
		t.Run(ct, func(t *testing.T) {
			gotFirst := make(chan struct{})
			be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ct)
				io.WriteString(w, "id: 1\ndata: first\n\n")
				http.NewResponseController(w).Flush()
				select {
				case <-gotFirst:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "id: 2\ndata: second\n\n")
			}))
			u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{be.target(t)}})
			gw := gatewayTo(t, RouteOptions{Upstream: u}, Options{})

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", gw.URL+"/events", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != ct {
				t.Errorf("Content-Type: got %q; want %q", got, ct)
			}
			br := bufio.NewReader(resp.Body)
			readEvent := func() string {
				var lines []string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("reading event: got %v after %q; want a whole event (not flushed?)", err, lines)
					}
					if line == "\n" {
						return strings.Join(lines, "")
					}
					lines = append(lines, line)
				}
			}
			if got, want := readEvent(), "id: 1\ndata: first\n"; got != want {
				t.Fatalf("first event: got %q; want %q", got, want)
			}
			close(gotFirst)
			if got, want := readEvent(), "id: 2\ndata: second\n"; got != want {
				t.Fatalf("second event: got %q; want %q", got, want)
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("after the events: got %q, %v; want EOF", rest, err)
			}
		})
	}
}

// TestTrailers: a trailer the upstream declares and sends reaches the
// client, over HTTP/1.1 (chunked) and HTTP/2 on either side.
func TestTrailers(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, cleartextH2C, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		w.Header().Set("X-Checksum", "c0ffee")
	}))
	for _, tt := range []struct {
		name     string
		upstream string
		client   int // HTTP major version between client and gateway
	}{
		{"http1 both sides", ProtoHTTP1, 1},
		{"h2c upstream", ProtoH2C, 1},
		{"h2 client", ProtoHTTP1, 2},
		{"h2 both sides", ProtoH2C, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t, UpstreamOptions{Protocol: tt.upstream, Targets: []*url.URL{be.target(t)}})
			h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
			var c *http.Client
			var base string
			if tt.client == 2 {
				s := httptest.NewUnstartedServer(h)
				s.EnableHTTP2 = true
				s.StartTLS()
				t.Cleanup(s.Close)
				c, base = s.Client(), s.URL
				c.Timeout = clientTimeout
				t.Cleanup(c.CloseIdleConnections)
			} else {
				c, base = newClient(t), serveHandler(t, h).URL
			}
			resp, err := c.Get(base + "/t")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ProtoMajor != tt.client {
				t.Errorf("client protocol: got HTTP/%d; want HTTP/%d", resp.ProtoMajor, tt.client)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || string(b) != "body" {
				t.Fatalf("body: got %q, %v; want \"body\"", b, err)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "c0ffee" {
				t.Errorf("trailer X-Checksum: got %q; want \"c0ffee\"", got)
			}
		})
	}
}
