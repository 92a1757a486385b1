package balance_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// TestLastErrorRefused: a target whose active check cannot connect shows
// when the check ended and that the connection was refused.
func TestLastErrorRefused(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	clock := newClock()
	p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(deadURL)}, HealthPath: "/healthz",
		HealthInterval: 20 * time.Millisecond, HealthTimeout: time.Second, Now: clock.Now})
	tg := p.Targets()[0]
	if s := tg.Status(); !s.LastCheck.IsZero() || s.LastError != "" || !s.LastErrorAt.IsZero() {
		t.Fatalf("before any check: %+v; want no last check nor error", s)
	}
	p.Start()
	waitFor(t, "a failing check", func() bool { return tg.Status().ActiveCheck == balance.ActiveFailing })
	s := tg.Status()
	if !s.LastCheck.Equal(clock.Now()) || s.LastError != "connection refused" || !s.LastErrorAt.Equal(clock.Now()) {
		t.Fatalf("got last_check %v, last_error %q at %v; want %v, \"connection refused\" at %v", s.LastCheck, s.LastError, s.LastErrorAt, clock.Now(), clock.Now())
	}
}

// TestLastErrorKept: a check that passes after one that failed moves
// LastCheck on and keeps the failure and its time.
func TestLastErrorKept(t *testing.T) {
	hs := newHealthServer(t, http.StatusServiceUnavailable)
	clock := newClock()
	p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(hs.URL)}, HealthPath: "/healthz",
		HealthInterval: 20 * time.Millisecond, HealthTimeout: time.Second, Now: clock.Now})
	tg := p.Targets()[0]
	p.Start()
	waitFor(t, "a failing check", func() bool { return tg.Status().ActiveCheck == balance.ActiveFailing })
	failedAt := clock.Now()
	hs.status.Store(http.StatusOK)
	waitFor(t, "a passing check", func() bool { return tg.Status().ActiveCheck == balance.ActivePassing })
	clock.Advance(time.Minute)
	waitFor(t, "a check after the clock moved", func() bool { return tg.Status().LastCheck.Equal(clock.Now()) })
	s := tg.Status()
	if s.LastError != "status 503" || !s.LastErrorAt.Equal(failedAt) {
		t.Fatalf("last_error %q at %v; want \"status 503\" at %v", s.LastError, s.LastErrorAt, failedAt)
	}
}

// TestLastErrorPassive: a request's failure reported with its cause is
// the target's last error; a success afterwards keeps it.
func TestLastErrorPassive(t *testing.T) {
	clock := newClock()
	p := newPool(t, balance.Options{Targets: targetURLs(1), MaxFails: 3, Now: clock.Now})
	tg := p.Targets()[0]
	err := &url.Error{Op: "Get", URL: "http://10.0.0.1:8080/a?token=secret", Err: fmt.Errorf("dial tcp: %w", syscall.ECONNRESET)}
	tg.ReportError(err)
	failedAt := clock.Now()
	clock.Advance(time.Second)
	tg.ReportSuccess()
	s := tg.Status()
	if s.LastError != "connection reset" || !s.LastErrorAt.Equal(failedAt) || !s.LastCheck.IsZero() {
		t.Fatalf("got %+v; want last_error \"connection reset\" at %v and no last check", s, failedAt)
	}
	tg.ReportError(errors.New("tls: handshake failure"))
	if got := tg.Status().LastError; got != "tls: handshake failure" {
		t.Fatalf("last_error %q; want the newer failure", got)
	}
	if n := testing.AllocsPerRun(100, tg.ReportSuccess); n != 0 {
		t.Errorf("ReportSuccess allocates %v times; want 0", n)
	}
}

// TestDescribeHidesURL: a failure not known by name is shown without the
// request's URL.
func TestDescribeHidesURL(t *testing.T) {
	p := newPool(t, balance.Options{Targets: targetURLs(1)})
	tg := p.Targets()[0]
	tg.ReportError(&url.Error{Op: "Get", URL: "http://x/?key=secret", Err: errors.New("malformed HTTP response")})
	if got := tg.Status().LastError; got != "malformed HTTP response" {
		t.Fatalf("last_error %q; want the cause alone", got)
	}
}
