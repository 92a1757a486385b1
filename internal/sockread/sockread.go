// Package sockread reads what has already arrived on a socket without
// waiting for more: the gateway uses it to tell whether an idle upstream
// connection was closed, and to look at a client's first bytes without
// a goroutine and a deadline when they are already there.
package sockread

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
)

// ErrWouldBlock: nothing has arrived yet.
var ErrWouldBlock = errors.New("sockread: nothing to read yet")

// ErrUnsupported: c cannot be read without waiting (a TLS connection,
// whose record reads cannot be interrupted safely, or a Windows socket).
var ErrUnsupported = errors.New("sockread: not a socket that can be read without waiting")

// Now reads into p what has arrived on c, without waiting: n bytes and
// nil, or io.EOF when the peer closed, ErrWouldBlock when nothing has
// arrived, ErrUnsupported when c cannot be read so, or the read's error.
// The socket is read directly: with a read deadline in the past, the
// runtime fails a read before it reaches the socket, so it would never
// see the EOF or the bytes.
func Now(c net.Conn, p []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok || runtime.GOOS == "windows" {
		return 0, ErrUnsupported
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, ErrUnsupported
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		// The socket is non-blocking: EAGAIN if nothing arrived, 0 bytes
		// at EOF.
		n, rerr = read(syscall.Read, fd, p)
		return true // done, without waiting for the socket
	}); err != nil {
		return 0, err
	}
	var te interface{ Timeout() bool }
	switch {
	case errors.As(rerr, &te) && te.Timeout(): // EAGAIN
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// read calls syscall.Read, whose descriptor is an int on Unix and a
// Handle on Windows, with the descriptor a syscall.RawConn passes.
func read[FD ~int | ~uintptr](r func(FD, []byte) (int, error), fd uintptr, p []byte) (int, error) {
	return r(FD(fd), p)
}
