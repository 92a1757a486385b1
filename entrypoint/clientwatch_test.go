package entrypoint

import (
	"context"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"gateway/internal/clientwatch"
)

type countLeaver struct{ n atomic.Int32 }

type reqKey struct{}

func (l *countLeaver) ClientLeft() { l.n.Add(1) }

// TestClientConnWatch: an HTTP/1 client connection tells the one Leaver
// watching that its client left when a read of it fails, but not for
// the timeout of net/http's own abort of its background read; it takes
// no watch once the client is gone, and Unwatch reports a watch that
// fired. It serves For only the request context it records.
func TestClientConnWatch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &clientConn{Conn: raw}

	ctx := clientwatch.NewContext(context.Background(), c)
	req, other := context.WithValue(ctx, reqKey{}, 1), context.WithValue(ctx, reqKey{}, 2)
	if clientwatch.For(req) != nil {
		t.Error("For found a Watcher before any request was served")
	}
	c.serving(req)
	if clientwatch.For(req) != clientwatch.Watcher(c) || clientwatch.For(other) != nil {
		t.Error("For: want the connection for the served request's context only")
	}
	c.served()
	if clientwatch.For(req) != nil {
		t.Error("For found a Watcher after the request was over")
	}

	a, b := new(countLeaver), new(countLeaver)
	if !c.Watch(a) || c.Watch(b) {
		t.Fatal("Watch: want the first Leaver taken and a second refused")
	}
	if !c.Unwatch(a) || !c.Watch(a) {
		t.Fatal("Unwatch then Watch again refused")
	}

	// net/http's abort: the read deadline long past, and the read fails.
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read with a past deadline succeeded")
	}
	c.readFailed(os.ErrDeadlineExceeded) // as if the poller had failed it
	if a.n.Load() != 0 {
		t.Fatal("the abort's timeout was taken for the client leaving")
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	peer.Close() // the client leaves
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the client closed: %v; want EOF", err)
	}
	if a.n.Load() != 1 {
		t.Errorf("ClientLeft called %d times; want 1", a.n.Load())
	}
	if c.Unwatch(a) {
		t.Error("Unwatch after ClientLeft reports the watch did not fire")
	}
	if c.Watch(b) {
		t.Error("Watch taken on a connection whose client left")
	}
}
