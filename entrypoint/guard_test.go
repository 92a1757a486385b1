package entrypoint

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestGuardBudget: the budget takes h2Burst costly frames at once, then
// one per h2Refill; frames that cost nothing are never charged.
func TestGuardBudget(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	g := newH2Guard(c1, quiet())
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	g.preface = 0
	frame := func(typ http2.FrameType, flags http2.Flags, length int) []byte {
		b := []byte{byte(length >> 16), byte(length >> 8), byte(length), byte(typ), byte(flags), 0, 0, 0, 1}
		return append(b, make([]byte, length)...)
	}
	// Frames that cost nothing, split at every byte.
	for _, f := range [][]byte{
		frame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 10),
		frame(http2.FrameData, http2.FlagDataEndStream, 0),
		frame(http2.FrameData, 0, 100),
		frame(http2.FramePing, http2.FlagPingAck, 8),
		frame(http2.FrameSettings, http2.FlagSettingsAck, 0),
		frame(http2.FrameWindowUpdate, 0, 4),
	} {
		for i := range f {
			g.scan(f[i : i+1])
		}
	}
	if g.costly != 0 {
		t.Fatalf("costly frames after free ones: got %d; want 0", g.costly)
	}
	rst := frame(http2.FrameRSTStream, 0, 4)
	for i := range h2Burst {
		g.scan(rst)
		if g.tripped {
			t.Fatalf("tripped at reset %d; want %d at once allowed", i+1, h2Burst)
		}
	}
	now = now.Add(h2Refill)
	g.scan(rst)
	if g.tripped {
		t.Fatal("tripped after a refill; want one more allowed")
	}
	g.scan(rst)
	if !g.tripped {
		t.Fatal("not tripped past the budget")
	}
	if _, err := g.Read(make([]byte, 1)); !errors.As(err, new(http2.ConnectionError)) {
		t.Errorf("Read after the budget: got %v; want a ConnectionError", err)
	}
}

// TestClientConnScan: the Content-Length field lines counted in a byte
// stream, however it is split into reads.
func TestClientConnScan(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 1},
		{"POST / HTTP/1.1\r\ncOnTeNt-LeNgTh:1\r\n\r\nx", 1},
		{"POST / HTTP/1.1\r\nX-Content-Length: 1\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nContent-Length : 1\r\n\r\n", 0}, // net/http refuses it
		{"POST / HTTP/1.1\r\nX: a\r\n Content-Length: 1\r\n\r\n", 0},
		{"POST / HTTP/1.1\nContent-Length: 1\nContent-Length: 1\n\n", 2},
		{"\n\ncontent-length:\ncontent-length:", 2},
		{"\ncontent-lengt\ncontent-length:", 1},
	} {
		for _, size := range []int{1, 2, 3, 7, 1 << 10} {
			c := &clientConn{}
			for b := []byte(tt.in); len(b) > 0; {
				k := min(size, len(b))
				c.scan(b[:k])
				b = b[k:]
			}
			if got := c.fields.Load(); got != tt.want {
				t.Errorf("%q in reads of %d: got %d fields; want %d", tt.in, size, got, tt.want)
			}
		}
	}
}
