package entrypoint

import (
	"bufio"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"golang.org/x/net/http2"
)

// HTTP/2 frames that cost the server work but produce no response are
// budgeted per connection: a client that sends them faster than the
// budget refills is told GOAWAY ENHANCE_YOUR_CALM and its connection is
// closed. Counted are RST_STREAM (the "rapid reset" attack: every
// HEADERS starts a request upstream, and the RST_STREAM right behind it
// lets the client open the next at once, past MaxConcurrentStreams),
// PING and SETTINGS that are not acknowledgements, PRIORITY, DATA frames
// that are empty and do not end their stream, and frame types HTTP/2
// does not define (which a receiver must read and ignore).
//
// The budget is a token bucket: h2Burst such frames at once, refilled at
// one per h2Refill (50 a second). A browser cancels a handful of
// streams when a page is left, and sends a few SETTINGS, PING and
// PRIORITY frames per connection; a client that cancels a stream for
// every request it makes, 50 times a second for as long as it likes,
// stays within it too. A flood of 100,000 resets ends after about 200,
// so about 200 requests reach the upstream.
const (
	h2Burst  = 200
	h2Refill = 20 * time.Millisecond
)

// h2ReadBuffer is the read buffer of an HTTP/2 connection. The framer
// reads a frame's 9-byte header and then its payload, each straight from
// the connection; with the buffer, small frames that arrive together cost
// one read between them. A payload at least this large is read straight
// into the framer's buffer, so the size is what an idle connection holds
// (as net/http's HTTP/1 connections hold 4 KiB), not a bound on frames.
const h2ReadBuffer = 4 << 10

// clientPreface is what an HTTP/2 client sends first (RFC 9113 section
// 3.4), before its first frame.
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h2Guard is the connection an HTTP/2 server reads from: it buffers
// reads and follows the frame headers as they pass, charging the costly
// frames to the connection's budget. Once the budget is spent, every
// further read fails with a connection error ENHANCE_YOUR_CALM, which
// the server answers with that GOAWAY before closing the connection.
//
// Read is called by the server's frame reader only, so the fields below
// need no lock.
type h2Guard struct {
	net.Conn
	br  *bufio.Reader
	log *slog.Logger
	now func() time.Time

	preface int     // bytes of the client preface still to pass
	hdr     [9]byte // the frame header being read
	nh      int     // bytes of hdr read so far
	payload uint32  // bytes of the current frame's payload still to pass
	// tat is the budget as a theoretical arrival time (GCRA): each
	// costly frame moves it on by h2Refill, and a frame that would move
	// it past now plus nothing is over budget. It is never let fall
	// more than h2Burst refills behind now.
	tat     time.Time
	costly  int // costly frames seen, for the log
	tripped bool
}

// h2GuardTLS is an h2Guard over TLS: the server reads the connection's
// TLS state through ConnectionState, to check it and to set each
// request's TLS field.
type h2GuardTLS struct{ *h2Guard }

func (g h2GuardTLS) ConnectionState() tls.ConnectionState {
	return g.Conn.(*tls.Conn).ConnectionState()
}

// newH2Guard wraps c, whose first bytes are the client preface. The
// read buffer is not pooled: the server's frame reader may still be in a
// read when ServeConn returns.
func newH2Guard(c net.Conn, log *slog.Logger) *h2Guard {
	return &h2Guard{Conn: c, br: bufio.NewReaderSize(c, h2ReadBuffer), log: log, now: time.Now, preface: len(clientPreface)}
}

func (g *h2Guard) Read(p []byte) (int, error) {
	if g.tripped {
		return 0, http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	n, err := g.br.Read(p)
	g.scan(p[:n])
	// The bytes of the frame that spent the budget are still returned:
	// the server reads the frame, and the next read fails. An error
	// returned now would be lost when the read is part of a larger one.
	return n, err
}

// scan follows the frames in b, which continues what earlier reads
// returned.
func (g *h2Guard) scan(b []byte) {
	for len(b) > 0 && !g.tripped {
		switch {
		case g.preface > 0:
			k := min(len(b), g.preface)
			g.preface -= k
			b = b[k:]
		case g.payload > 0:
			k := min(uint32(len(b)), g.payload)
			g.payload -= k
			b = b[k:]
		default:
			k := copy(g.hdr[g.nh:], b)
			g.nh += k
			b = b[k:]
			if g.nh < len(g.hdr) {
				return
			}
			g.nh = 0
			g.payload = uint32(g.hdr[0])<<16 | uint32(g.hdr[1])<<8 | uint32(g.hdr[2])
			if costlyFrame(http2.FrameType(g.hdr[3]), http2.Flags(g.hdr[4]), g.payload) {
				g.charge()
			}
		}
	}
}

// costlyFrame reports a frame that makes the server work without
// producing a response. The preface's own SETTINGS is counted too; the
// burst has room for it.
func costlyFrame(t http2.FrameType, f http2.Flags, length uint32) bool {
	switch t {
	case http2.FrameRSTStream, http2.FramePriority:
		return true
	case http2.FramePing, http2.FrameSettings:
		return !f.Has(http2.FlagPingAck) // the same bit as FlagSettingsAck
	case http2.FrameData:
		return length == 0 && !f.Has(http2.FlagDataEndStream)
	case http2.FrameHeaders, http2.FrameContinuation, http2.FrameWindowUpdate,
		http2.FrameGoAway, http2.FramePushPromise:
		return false
	}
	return true // a type HTTP/2 does not define
}

func (g *h2Guard) charge() {
	g.costly++
	now := g.now()
	if floor := now.Add(-h2Burst * h2Refill); g.tat.Before(floor) {
		g.tat = floor
	}
	g.tat = g.tat.Add(h2Refill)
	if !g.tat.After(now) {
		return
	}
	g.tripped = true
	g.log.Warn("HTTP/2 connection closed: too many resets or control frames",
		"client", g.RemoteAddr().String(), "frames", g.costly,
		"budget", h2Burst, "refill_per_second", int(time.Second/h2Refill))
}
