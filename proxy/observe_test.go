package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// TestErrorKind: upstream failures fall into the four kinds that
// gateway_upstream_errors_total counts.
func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), "timeout"},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{&net.OpError{Op: "dial", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, "refused"},
		{&net.OpError{Op: "read", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}, "reset"},
		{io.ErrUnexpectedEOF, "other"},
		{errors.New("tls: bad certificate"), "other"},
	} {
		if got := ErrorKinds[errorKind(tc.err)]; got != tc.want {
			t.Errorf("%v: got %s; want %s", tc.err, got, tc.want)
		}
	}
}
