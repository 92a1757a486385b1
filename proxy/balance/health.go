package balance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxHealthBody bounds how much of a check's response is read. Reading the
// body to the end lets the connection be reused; the bound keeps a
// misbehaving endpoint from streaming into the gateway forever.
const maxHealthBody = 64 << 10

// Start begins active health checks when HealthPath is set. Further
// calls, and calls after Close, do nothing.
func (p *Pool) Start() {
	if p.healthPath == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	p.running.Add(1)
	go p.healthLoop(ctx)
}

// Close stops active health checks, abandoning any in progress, and
// waits for them to finish. Picking from a closed pool still works, with
// the active results frozen as they were.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.wg.Wait()
}

func (p *Pool) healthLoop(ctx context.Context) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	// Checking at once rather than after the first interval finds targets
	// that are down at startup before much traffic has gone their way.
	p.checkAll(ctx)
	tick := time.NewTicker(p.healthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.checkAll(ctx)
		}
	}
}

// checkAll checks every target concurrently, so one slow target does not
// delay the verdict on the others, and returns when all are done so that
// rounds never overlap; a round longer than the interval skips ticks.
func (p *Pool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range p.targets {
		wg.Add(1)
		p.running.Add(1)
		go func() {
			defer wg.Done()
			defer p.running.Add(-1)
			p.check(ctx, t)
		}()
	}
	wg.Wait()
}

func (p *Pool) check(ctx context.Context, t *Target) {
	err := p.probe(ctx, t)
	if ctx.Err() != nil {
		// The pool is closing; a check cut short says nothing of t.
		return
	}
	ok := err == nil
	now := p.now().UnixNano()
	if !ok {
		t.lastFail.Store(now)
		t.noteFailure(err, now)
	}
	t.lastCheck.Store(now)
	changed := t.activeOK.Swap(ok) != ok
	t.checked.Store(true)
	if ok {
		if changed {
			p.log.Info("upstream target up", "target", t.name, "reason", "health check passed")
		}
		// A pass is fresher news than the failures behind a cool-down:
		// the target is back at once, not when the cool-down ends.
		if t.downUntil.Load() != 0 || t.fails.Load() != 0 {
			t.restore("health check passed")
		}
	} else if changed {
		p.log.Warn("upstream target down", "target", t.name, "reason", err.Error())
	}
}

// probe runs one check and returns why it failed, or nil.
func (p *Pool) probe(ctx context.Context, t *Target) error {
	ctx, cancel := context.WithTimeout(ctx, p.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.healthURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "gateway-health-check")
	resp, err := p.healthClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxHealthBody)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return checkStatus(resp.StatusCode)
	}
	return nil
}

// checkStatus is a check answered with a status outside 2xx and 3xx.
type checkStatus int

func (s checkStatus) Error() string { return "health check: status " + strconv.Itoa(int(s)) }

// describe says in a few words why a check or a request to a target
// failed, for status pages: the common causes by name, anything else by
// its message without the request's URL (whose query may carry secrets),
// cut short.
func describe(err error) string {
	var st checkStatus
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &st):
		return "status " + strconv.Itoa(int(st))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &dns):
		return "dns: " + dns.Err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := strings.TrimPrefix(err.Error(), "health check: ")
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "..."
	}
	return msg
}

// maxErrorText bounds the length of a described failure.
const maxErrorText = 120

// checkClient copies c so that redirects are not followed: a 3xx already
// counts as up, and following it could judge some other server.
func checkClient(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// healthURL resolves the check path under the target's base URL, so a
// target mounted at a prefix is checked under that prefix too.
func healthURL(target, health *url.URL) string {
	u := *target
	u.Path = strings.TrimSuffix(target.Path, "/") + health.Path
	u.RawPath = ""
	u.RawQuery = health.RawQuery
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
