package entrypoint

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSniff: the first bytes of a cleartext connection, however they
// arrive, are sorted at the first byte that differs from the HTTP/2
// preface or once the whole preface is there, and whoever gets the
// connection reads every byte from the start.
func TestSniff(t *testing.T) {
	preface := clientPreface
	for _, tt := range []struct {
		name    string
		parts   []string
		already string // bytes sniffNow had read (a partial preface)
		want    string // "h1", "h2" or "none"
	}{
		{"request line", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, "", "h1"},
		{"HTTP/0.9", []string{"GET /\r\n"}, "", "h1"},
		{"byte by byte until it differs", []string{"P", "O", "ST / HTTP/1.1\r\n"}, "", "h1"},
		{"preface in pieces", []string{preface[:3], preface[3:10], preface[10:] + "frames"}, "", "h2"},
		{"preface after a partial one read earlier", []string{preface[5:]}, preface[:5], "h2"},
		{"method sharing the preface's first letters", []string{"PRI"}, "", "none"}, // then the client closes
		{"nothing", nil, "", "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c1, c2 := net.Pipe()
			defer c1.Close()
			go func() {
				for _, p := range tt.parts {
					if _, err := io.WriteString(c2, p); err != nil {
						return
					}
				}
				if tt.want == "none" {
					c2.Close()
				}
			}()
			l := &connListener{timeout: 10 * time.Second, log: quiet()}
			var c net.Conn = c1
			if tt.already != "" {
				c = &clientConn{Conn: c1, prefix: []byte(tt.already)}
			}
			h1, h2 := l.sniff(c)
			got := "none"
			switch {
			case h1 != nil:
				got = "h1"
			case h2 != nil:
				got = "h2"
			}
			if got != tt.want {
				t.Fatalf("sorted as %s; want %s", got, tt.want)
			}
			if got == "none" {
				return
			}
			conn := h1
			if h2 != nil {
				conn = h2.(*h2Guard).Conn
			}
			want := tt.already + strings.Join(tt.parts, "")
			b := make([]byte, len(want))
			if _, err := io.ReadFull(conn, b); err != nil || string(b) != want {
				t.Errorf("read back %q, %v; want %q", b, err, want)
			}
		})
	}
}

// TestPrefixReleased: once the bytes read while sorting are handed on,
// the wrappers let go of them, so an idle keep-alive connection does not
// hold its first request (a browser's is a KiB or two) for its life.
func TestPrefixReleased(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	first := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h1 := &clientConn{Conn: a, prefix: append([]byte(nil), first...)}
	h2 := &prefixConn{Conn: a, prefix: append([]byte(nil), first...)}
	for name, c := range map[string]interface {
		Read([]byte) (int, error)
		held() []byte
	}{"clientConn": h1test{h1}, "prefixConn": h2test{h2}} {
		buf := make([]byte, 10)
		got := 0
		for got < len(first) {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got += n
		}
		if p := c.held(); p != nil {
			t.Errorf("%s: holds a prefix of len %d cap %d after handing it on; want nil", name, len(p), cap(p))
		}
	}
}

type h1test struct{ *clientConn }

func (c h1test) held() []byte { return c.prefix }

type h2test struct{ *prefixConn }

func (c h2test) held() []byte { return c.prefix }
