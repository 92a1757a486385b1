package entrypoint

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestAbortedRead: a read deadline long past (net/http's way of
// interrupting its background read) fails a read at once with a
// timeout and allocates nothing; clearing it, or a deadline set through
// SetDeadline, reads again; a deadline just past fails as the
// connection's own does.
func TestAbortedRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := &clientConn{Conn: sc}
	defer c.Close()
	buf := make([]byte, 8)
	readFails := func(what string) {
		t.Helper()
		n, err := c.Read(buf)
		var ne net.Error
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: Read = %d, %v; want 0 and a timeout", what, n, err)
		}
	}
	readsX := func(what string) {
		t.Helper()
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(buf); n != 1 || buf[0] != 'x' || err != nil {
			t.Fatalf("%s: Read = %d %q, %v; want the byte sent", what, n, buf[:n], err)
		}
	}

	longAgo := time.Unix(1, 0)
	c.SetReadDeadline(longAgo)
	readFails("deadline in 1970")
	if a := testing.AllocsPerRun(100, func() { c.Read(buf) }); a != 0 {
		t.Errorf("an aborted read allocates %v times; want 0", a)
	}
	c.SetReadDeadline(time.Time{})
	readsX("deadline cleared")
	c.SetDeadline(longAgo)
	readFails("SetDeadline in 1970")
	c.SetDeadline(time.Time{})
	readsX("SetDeadline cleared")
	c.SetReadDeadline(time.Now().Add(-time.Millisecond))
	readFails("deadline just past")
	c.SetReadDeadline(time.Now().Add(time.Minute))
	readsX("deadline ahead")
}
