// Package h3test gives tests HTTP/3 clients of the gateway: a plain one,
// and one that sends a request in 0-RTT (early data) and is answered
// before the handshake can complete, so the server must decide on it
// as early data.
package h3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Transport is an HTTP/3 client that trusts roots, closed when the test
// ends.
func Transport(t testing.TB, roots *x509.CertPool) *http3.Transport {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// Early sends requests in 0-RTT to one server, with the session ticket
// a first, ordinary connection got.
type Early struct {
	addr *net.UDPAddr
	tls  *tls.Config
}

// ticketCache is a session cache that says when a ticket arrives.
type ticketCache struct {
	tls.ClientSessionCache
	once sync.Once
	got  chan struct{}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		c.once.Do(func() { close(c.got) })
	}
}

// Resume makes one request (GET url) over an ordinary HTTP/3 connection
// to addr and keeps the session ticket the server sends after it, for
// Do. The server must accept 0-RTT for the ticket to allow it.
func Resume(t testing.TB, addr string, roots *x509.CertPool, url string) *Early {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{})}
	conf := &tls.Config{RootCAs: roots, ServerName: ua.IP.String(), ClientSessionCache: cache, NextProtos: []string{http3.NextProtoH3}}
	tr := &http3.Transport{TLSClientConfig: conf}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	select {
	case <-cache.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no session ticket from the server")
	}
	return &Early{addr: ua, tls: conf}
}

// Do sends one request in 0-RTT on a new connection resumed from the
// ticket, holding back the client's handshake packets until the answer
// has come: the server cannot complete the handshake before it answers
// (every datagram with a Handshake packet is held, the client's Finished
// among them), so it answered a request it had as early data. When the request did
// not leave in 0-RTT after all (the client had the server's first
// flight before it was sent), no answer comes, and Do tries again on
// another connection, a few times.
func (e *Early) Do(method, url string, body []byte) (status int, respBody []byte, err error) {
	for range 5 {
		status, respBody, err = e.try(method, url, body)
		if !errors.Is(err, errNotEarly) {
			return status, respBody, err
		}
	}
	return 0, nil, err
}

// Accepted dials a connection resumed from the ticket, offering 0-RTT,
// and reports whether the server accepted it, once the handshake is
// complete.
func (e *Early) Accepted() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddrEarly(ctx, e.addr.String(), e.tls, &quic.Config{})
	if err != nil {
		return false, err
	}
	defer conn.CloseWithError(0, "")
	select {
	case <-conn.HandshakeComplete():
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return conn.ConnectionState().Used0RTT, nil
}

var errNotEarly = errors.New("the request was not answered as early data")

func (e *Early) try(method, url string, body []byte) (int, []byte, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, nil, err
	}
	hc := &holdConn{PacketConn: pc}
	qtr := &quic.Transport{Conn: hc}
	defer func() {
		hc.release()
		qtr.Close()
		pc.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := qtr.DialEarly(ctx, e.addr, e.tls, &quic.Config{})
	if err != nil {
		return 0, nil, fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	// The body goes on the stream below, after the header.
	req.ContentLength = int64(len(body))
	if err := str.SendRequestHeader(req); err != nil {
		return 0, nil, err
	}
	if _, err := str.Write(body); err != nil {
		return 0, nil, err
	}
	str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, errNotEarly
		}
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// holdConn is a client's UDP socket that holds back every datagram
// from the first that carries a QUIC Handshake packet (the client's
// Finished) until release: the server's handshake cannot complete.
//
// It is a net.PacketConn only, so that quic-go writes through WriteTo
// (a *net.UDPConn would be written with WriteMsgUDP).
type holdConn struct {
	net.PacketConn
	mu       sync.Mutex
	released bool
	held     []heldPacket
}

type heldPacket struct {
	b    []byte
	addr net.Addr
}

func (c *holdConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.released && (len(c.held) > 0 || hasHandshake(b)) {
		c.held = append(c.held, heldPacket{bytes.Clone(b), addr})
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// release sends what was held, in order, and holds nothing more.
func (c *holdConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	for _, p := range c.held {
		_, _ = c.PacketConn.WriteTo(p.b, p.addr)
	}
	c.held = nil
}

// hasHandshake reports whether a datagram holds a Handshake packet among
// its coalesced long-header packets (RFC 9000 section 17.2).
func hasHandshake(b []byte) bool {
	for len(b) > 7 && b[0]&0x80 != 0 {
		typ := b[0] >> 4 & 3
		if typ == 2 {
			return true
		}
		i := 5             // first byte, version
		i += 1 + int(b[i]) // destination connection ID
		if i >= len(b) {
			return false
		}
		i += 1 + int(b[i]) // source connection ID
		if typ == 0 {      // Initial: token
			n, l := varint(b[i:])
			if l == 0 {
				return false
			}
			i += l + int(n)
		}
		if i >= len(b) {
			return false
		}
		n, l := varint(b[i:])
		if l == 0 {
			return false
		}
		i += l + int(n)
		if i > len(b) {
			return false
		}
		b = b[i:]
	}
	return false
}

// varint decodes a QUIC variable-length integer and says how many bytes
// it took (0: too short).
func varint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	l := 1 << (b[0] >> 6)
	if len(b) < l {
		return 0, 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:l] {
		v = v<<8 | uint64(c)
	}
	return v, l
}
