package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"gateway/internal/outcome"
	"gateway/internal/routes"
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
		if got := ErrorKinds[errorKind(context.Background(), tc.err)]; got != tc.want {
			t.Errorf("%v: got %s; want %s", tc.err, got, tc.want)
		}
	}
}

// obsWriter offers an Observation, as the access log's writer does.
type obsWriter struct {
	http.ResponseWriter
	o *Observation
}

func (w obsWriter) Observation() *Observation { return w.o }

// TestObservationTarget: the observation names the target that
// answered, even when targets share a host and differ only in path.
func TestObservationTarget(t *testing.T) {
	checkLeaks(t)
	be := newBackend(t, plainHTTP1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base := be.target(t).String()
	u := newUpstream(t, UpstreamOptions{
		Balance: "round_robin",
		Targets: []*url.URL{mustURL(t, base+"/a"), mustURL(t, base+"/b")},
	})
	h := newHandler(t, Options{Routes: []RouteOptions{{Upstream: u}}})
	// Round robin starts at the first target.
	for i := range 4 {
		var o Observation
		rec := httptest.NewRecorder()
		h.ServeHTTP(obsWriter{rec, &o}, httptest.NewRequest(http.MethodGet, "/x", nil))
		name, target, _, ok := o.Upstream()
		if !ok {
			t.Fatalf("no upstream observed; response %d %q", rec.Code, rec.Body)
		}
		if want := base + []string{"/a", "/b"}[i%2]; name != u.Name() || target != want {
			t.Errorf("request %d: observed %s %s; want %s %s", i, name, target, u.Name(), want)
		}
	}
}

// TestObservationRoute: the route an Observation reports is named, in
// the handler's RouteTable, as the route that took the request, for
// routes listed in any order of specificity and with the batching
// endpoint's ID after them; a request no route takes reports None.
func TestObservationRoute(t *testing.T) {
	u := newUpstream(t, UpstreamOptions{Targets: []*url.URL{mustURL(t, "http://127.0.0.1:1")}})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := newHandler(t, Options{Routes: []RouteOptions{
		{Name: "catchall", Upstream: u},
		{Name: "api", Path: "/api", Handler: inner},
		{Name: "host", Hosts: []string{"a.example.com"}, Path: "/api", Handler: inner},
		{Name: "get", Path: "/get", Methods: []string{"GET"}, Handler: inner, Middleware: []Middleware{func(h http.Handler) http.Handler { return h }}},
	}})
	for _, batch := range []bool{false, true} {
		tab := h.RouteTable(batch)
		for _, tc := range []struct{ method, url, want string }{
			{"GET", "http://b.example.com/api/x", "api"},
			{"GET", "http://a.example.com/api/x", "host"},
			{"GET", "http://b.example.com/get", "get"},
			{"POST", "http://b.example.com/get", routes.NoneName}, // 405
		} {
			var o Observation
			h.ServeHTTP(obsWriter{httptest.NewRecorder(), &o}, httptest.NewRequest(tc.method, tc.url, nil))
			if got := tab.Name(o.Route); got != tc.want {
				t.Errorf("batch %v: %s %s: route %d named %q; want %q", batch, tc.method, tc.url, o.Route, got, tc.want)
			}
		}
		if id, ok := tab.Batch(); ok != batch || (batch && tab.Name(id) != routes.BatchName) {
			t.Errorf("batch %v: Batch() %d, %v", batch, id, ok)
		}
		if got, want := tab.Len(), 5+btoi(batch); got != want {
			t.Errorf("batch %v: %d IDs; want %d", batch, got, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestObservationContext: the context an observation makes carries it
// for outcome.FromContext and is its parent in everything else: values,
// deadline, cancellation and its cause, for contexts derived from it
// too; an observation already in use leaves that request's context as
// it is.
func TestObservationContext(t *testing.T) {
	type key struct{}
	cause := errors.New("client gone")
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	var o Observation
	ctx := o.context(parent)
	if got := outcome.FromContext(ctx); got != &o {
		t.Fatalf("FromContext: %v; want the observation", got)
	}
	if got := ctx.Value(key{}); got != "v" {
		t.Errorf("Value: %v; want the parent's", got)
	}
	child, stop := context.WithTimeout(ctx, time.Hour)
	defer stop()
	if got := outcome.FromContext(child); got != &o {
		t.Errorf("FromContext of a child: %v", got)
	}
	fired := make(chan struct{})
	context.AfterFunc(child, func() { close(fired) })
	again := o.context(context.Background())
	if outcome.FromContext(again) != &o || again.Done() != nil || ctx.Done() != parent.Done() {
		t.Errorf("a second context changed the first, or lacks the observation")
	}
	cancel(cause)
	<-fired
	if ctx.Err() != context.Canceled || context.Cause(ctx) != cause || context.Cause(child) != cause {
		t.Errorf("after cancel: Err %v, Cause %v, child's Cause %v", ctx.Err(), context.Cause(ctx), context.Cause(child))
	}
}
