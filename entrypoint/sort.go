package entrypoint

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"gateway/internal/sockread"
)

// connListener decides, for each connection of one listener, which
// protocol serves it, before net/http's server sees it:
//
//   - on a TLS listener it runs the handshake; a connection that chose
//     h2 by ALPN is served by the HTTP/2 server (serveH2), any other is
//     handed to net/http's HTTP/1 server, which reads the plaintext;
//   - on a cleartext listener with h2c, it reads the first bytes: the
//     HTTP/2 client preface goes to serveH2, anything else to net/http
//     with the bytes read so far. It decides at the first byte that
//     differs from the preface, so a short request line (an HTTP/0.9
//     "GET /") reaches net/http at once and is refused there, instead of
//     waiting out the header timeout for bytes that never come, as
//     net/http's own preface check does;
//   - on a cleartext listener without h2c, it hands every connection to
//     net/http as it is accepted.
//
// Doing the handshake here rather than in net/http is what puts the
// HTTP/1 and HTTP/2 wrappers (clientConn, h2Guard) above TLS, where the
// bytes are plaintext. HTTP/1 connections are net/http's to track and
// drain; connListener tracks the others, those still being sorted and
// those HTTP/2 serves, and Server.Shutdown drains them.
type connListener struct {
	inner   net.Listener
	tls     *tls.Config // nil: cleartext
	h2c     bool
	timeout time.Duration // bounds the handshake and the preface read
	serveH2 func(net.Conn)
	log     *slog.Logger

	h1     chan net.Conn // sorted connections for net/http's Accept
	done   chan struct{} // closed by Close
	failed chan struct{} // closed when the accept loop ends on an error
	err    error         // why it ended; written before failed is closed
	once   sync.Once

	mu sync.Mutex // guards conns
	// conns are the connections being sorted (false) or served as
	// HTTP/2 (true).
	conns map[net.Conn]bool
	// wg counts the accept loop, the sorting goroutines and the HTTP/2
	// connections.
	wg sync.WaitGroup
}

func newConnListener(inner net.Listener, tlsConf *tls.Config, h2c bool, timeout time.Duration, serveH2 func(net.Conn), log *slog.Logger) *connListener {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	l := &connListener{
		inner: inner, tls: tlsConf, h2c: h2c, timeout: timeout, serveH2: serveH2, log: log,
		h1: make(chan net.Conn), done: make(chan struct{}), failed: make(chan struct{}),
		conns: make(map[net.Conn]bool),
	}
	if l.sorts() {
		l.wg.Add(1)
		go l.acceptLoop()
	}
	return l
}

// sorts reports whether connections must be looked at before net/http
// gets them.
func (l *connListener) sorts() bool { return l.tls != nil || l.h2c }

// Accept returns the next connection for net/http's HTTP/1 server.
func (l *connListener) Accept() (net.Conn, error) {
	if !l.sorts() {
		c, err := l.inner.Accept()
		if err != nil {
			return nil, err
		}
		return &clientConn{Conn: c}, nil
	}
	select {
	case c := <-l.h1:
		return c, nil
	case <-l.failed:
		return nil, l.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting and closes the connections still being sorted;
// HTTP/2 connections go on until they are drained (drain) or closed
// (closeAll).
func (l *connListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		for c, h2 := range l.conns {
			if !h2 {
				c.Close()
			}
		}
		l.mu.Unlock()
	})
	return err
}

// drain waits until the accept loop, the sorting and every HTTP/2
// connection have ended, or ctx has; then it closes what is left and
// returns ctx's error.
func (l *connListener) drain(ctx context.Context) error {
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	l.closeAll()
	<-ended
	return ctx.Err()
}

// closeAll closes every connection the listener tracks.
func (l *connListener) closeAll() {
	l.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}

func (l *connListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if temporaryAcceptError(err) {
				// As net/http does: out of descriptors now is not out of
				// them for good.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed; retrying", "address", l.Addr().String(), "err", err, "delay", delay)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
					return
				}
			}
			l.err = err
			close(l.failed)
			return
		}
		delay = 0
		if !l.track(c, false) {
			c.Close()
			return
		}
		if l.tls == nil {
			// A client sends its first bytes right after connecting, so
			// they are often there already: sorted now, the connection
			// costs no goroutine, deadline or second read of its own.
			h1, h2, ok := l.sniffNow(c)
			if ok {
				l.wg.Add(1)
				l.dispatch(c, h1, h2)
				continue
			}
			if h1 != nil {
				c = h1 // sort goes on from the bytes read
			}
		}
		l.wg.Add(1)
		go l.sort(c)
	}
}

func temporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// track adds c to the tracked connections; false once the listener is
// closed.
func (l *connListener) track(c net.Conn, h2 bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		// Too late: the shutdown's GOAWAY has gone to the HTTP/2
		// connections there were, and net/http takes no more.
		return false
	default:
	}
	l.conns[c] = h2
	return true
}

func (l *connListener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// sort finds c's protocol and hands it on.
func (l *connListener) sort(c net.Conn) {
	var h1, h2 net.Conn
	if l.tls != nil {
		h1, h2 = l.handshake(c)
	} else {
		h1, h2 = l.sniff(c)
	}
	l.dispatch(raw(c), h1, h2)
}

// raw is the accepted connection under a clientConn of sniffNow's.
func raw(c net.Conn) net.Conn {
	if cc, ok := c.(*clientConn); ok {
		return cc.Conn
	}
	return c
}

// dispatch hands the accepted connection c on as h1 (to net/http) or h2
// (served here, on a goroutine of its own), or closes it when it is
// neither. It is counted in l.wg, and marks its end.
func (l *connListener) dispatch(c, h1, h2 net.Conn) {
	switch {
	case h2 != nil:
		go func() {
			defer l.wg.Done()
			if l.track(c, true) {
				l.serveH2(h2)
			}
			c.Close()
			l.untrack(c)
		}()
		return
	case h1 != nil:
		l.untrack(c)
		select {
		case l.h1 <- h1:
		case <-l.done:
			c.Close()
		}
	default:
		c.Close()
		l.untrack(c)
	}
	l.wg.Done()
}

// handshake runs the TLS handshake within the listener's timeout, as
// net/http does for its own TLS listeners.
func (l *connListener) handshake(c net.Conn) (h1, h2 net.Conn) {
	tc := tls.Server(c, l.tls)
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
		return nil, nil
	}
	_ = c.SetDeadline(time.Time{})
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
		return nil, h2GuardTLS{newH2Guard(tc, l.log)}
	case ALPNChallengeProtocol:
		// The handshake was the answer (the challenge certificate); the
		// validator expects the connection closed, not HTTP.
		l.log.Debug("ACME TLS-ALPN-01 challenge answered", "client", c.RemoteAddr().String(), "server_name", tc.ConnectionState().ServerName)
		return nil, nil
	}
	return clientConnTLS{&clientConn{Conn: tc}}, nil
}

// looksLikeHTTP reports a first TLS record header that is the start of a
// plaintext HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// sniffBuffer is what the first read of a cleartext connection takes,
// so that a request that arrived whole is read once, not once here and
// again by net/http.
const sniffBuffer = 4 << 10

var sniffBuffers = sync.Pool{New: func() any { b := make([]byte, sniffBuffer); return &b }}

// prefaceVerdict tells from the first bytes of a connection whether it
// speaks HTTP/2 with prior knowledge: decided at the first byte that
// differs from the client preface, or once the whole preface is there.
func prefaceVerdict(b []byte) (decided, h2 bool) {
	k := min(len(b), len(clientPreface))
	if string(b[:k]) != clientPreface[:k] {
		return true, false
	}
	return len(b) >= len(clientPreface), true
}

// sorted wraps c, whose first bytes are b, for the protocol they show.
func (l *connListener) sorted(c net.Conn, b []byte, h2 bool) (h1c, h2c net.Conn) {
	prefix := append([]byte(nil), b...) // b is a pooled buffer's
	if h2 {
		return nil, newH2Guard(&prefixConn{Conn: c, prefix: prefix}, l.log)
	}
	return &clientConn{Conn: c, prefix: prefix}, nil
}

// sniffNow sorts c by what has already arrived on it, without waiting;
// ok is false when that is not enough (or nothing has arrived), and
// sniff must wait for more.
func (l *connListener) sniffNow(c net.Conn) (h1, h2 net.Conn, ok bool) {
	bp := sniffBuffers.Get().(*[]byte)
	defer sniffBuffers.Put(bp)
	n, err := sockread.Now(c, *bp)
	if err != nil {
		return nil, nil, false
	}
	decided, isH2 := prefaceVerdict((*bp)[:n])
	if !decided {
		// A partial preface: sniff goes on from here, with these bytes.
		h1, _ = l.sorted(c, (*bp)[:n], false)
		return h1, nil, false
	}
	h1, h2 = l.sorted(c, (*bp)[:n], isH2)
	return h1, h2, true
}

// sniff reads, within the listener's timeout, until the bytes differ
// from the HTTP/2 client preface or are the whole of it. c may hold bytes
// already read (a clientConn from sniffNow).
func (l *connListener) sniff(c net.Conn) (h1, h2 net.Conn) {
	var got []byte
	if cc, ok := c.(*clientConn); ok {
		got, c = cc.prefix, cc.Conn
	}
	bp := sniffBuffers.Get().(*[]byte)
	defer sniffBuffers.Put(bp)
	buf := append((*bp)[:0], got...)
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	for {
		if decided, isH2 := prefaceVerdict(buf); decided {
			_ = c.SetReadDeadline(time.Time{})
			return l.sorted(c, buf, isH2)
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			if decided, _ := prefaceVerdict(buf); decided {
				continue
			}
			return nil, nil // gone or silent before it said anything useful
		}
	}
}

// prefixConn returns the bytes already read from its connection first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil // as clientConn: not held for the connection's life
		}
		return n, nil
	}
	return c.Conn.Read(p)
}
