// Package browsertest runs a headless Chromium for a test, so the admin
// dashboard is tested in a real browser: it starts the browser, records
// every request the page makes and every script error and console or
// security message it logs, and saves screenshots where a person can
// look at them.
package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Candidates are where Chromium is looked for, in order: Debian's path,
// then the names it has on PATH.
var Candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser"}

// Find returns the path of a Chromium program, or an error naming where
// it looked.
func Find() (string, error) {
	for _, c := range Candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium among " + strings.Join(Candidates, ", "))
}

// Timeout bounds each Run: a page that never reaches the state a test
// waits for fails the test instead of hanging it.
const Timeout = 30 * time.Second

// Browser is a headless Chromium with one tab, alive until the test ends.
type Browser struct {
	t   testing.TB
	ctx context.Context // the tab's; Run derives a bounded context from it
	// Dir is where screenshots go: $GATEWAY_ARTIFACTS, or a directory
	// of the test's own.
	Dir string

	mu       sync.Mutex // guards the slices below, written by the tab's event loop
	requests []Request
	problems []Problem
}

// Request is one request the page made.
type Request struct {
	Method string
	URL    string
	// Authorization is the header's value as the browser sent it ("" if
	// none), so a test can tell a token travelled as a header.
	Authorization string
}

// Problem is something the page reported that a healthy page does not:
// an uncaught exception, a console.error, or a log entry of level error
// (a Content-Security-Policy violation, a failed load).
type Problem struct {
	Kind string // "exception", "console" or the log entry's source ("security", "network", ...)
	Text string
	URL  string
}

// New starts Chromium for t. Without Chromium the test is skipped, unless
// the environment variable CI is set: CI never passes by skipping.
func New(t testing.TB) *Browser {
	t.Helper()
	path, err := Find()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser test: %v (install Debian package chromium)", err)
		}
		t.Skip("browser test: install Debian package chromium")
	}
	b := &Browser{t: t, Dir: os.Getenv("GATEWAY_ARTIFACTS")}
	if b.Dir == "" {
		b.Dir = t.TempDir()
	} else if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox on.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b.ctx = ctx
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Call(sctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("network.enable: %v", err)
	}
	if _, err := chromedp.Call(sctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("log.enable: %v", err)
	}
	return b
}

// record runs on the tab's event loop: it must only append.
func (b *Browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r := Request{Method: ev.Request.Method, URL: ev.Request.URL}
		for k, v := range ev.Request.Headers {
			if strings.EqualFold(k, "Authorization") {
				r.Authorization, _ = v.(string)
			}
		}
		b.requests = append(b.requests, r)
	case *runtime.EventExceptionThrown:
		text := ev.ExceptionDetails.Text
		if e := ev.ExceptionDetails.Exception; e != nil && e.Description != "" {
			text += " " + e.Description
		}
		b.problems = append(b.problems, Problem{Kind: "exception", Text: text, URL: ev.ExceptionDetails.URL})
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		b.problems = append(b.problems, Problem{Kind: "console", Text: strings.Join(parts, " ")})
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError {
			return
		}
		b.problems = append(b.problems, Problem{Kind: string(ev.Entry.Source), Text: ev.Entry.Text, URL: ev.Entry.URL})
	}
}

// Context is the tab's context bounded by Timeout, for chromedp calls a
// test makes itself.
func (b *Browser) Context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, Timeout)
}

// Run runs the actions in the tab, in order, and fails the test on the
// first error.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.Context()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nproblems: %v", err, b.Problems())
	}
}

// Eval evaluates a JavaScript expression and decodes its value into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.Context()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript predicate until it is truthy; what says
// what is awaited, for the failure's message.
func (b *Browser) WaitFor(what, predicate string) {
	b.t.Helper()
	b.WaitWithin(Timeout, what, predicate)
}

// WaitWithin is WaitFor for a test that bounds the wait itself, such as
// "within one update"; it returns how long the wait took.
func (b *Browser) WaitWithin(d time.Duration, what, predicate string) time.Duration {
	b.t.Helper()
	ctx, cancel := b.Context()
	defer cancel()
	start := time.Now()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(d))); err != nil {
		b.t.Fatalf("waiting %v for %s: %v\nproblems: %v", d, what, err, b.Problems())
	}
	return time.Since(start)
}

// ColorScheme makes the page see prefers-color-scheme as scheme ("light"
// or "dark"; "" is the system's again).
func (b *Browser) ColorScheme(scheme string) {
	b.t.Helper()
	ctx, cancel := b.Context()
	defer cancel()
	p := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, p); err != nil {
		b.t.Fatalf("prefers-color-scheme %s: %v", scheme, err)
	}
}

// Requests returns the requests the page made so far.
func (b *Browser) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Problems returns what the page reported so far.
func (b *Browser) Problems() []Problem {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.problems)
}

// CheckOrigin fails the test if the page made any request to another
// origin than origin (scheme://host:port); data: URLs stay in the page.
func (b *Browser) CheckOrigin(origin string) {
	b.t.Helper()
	for _, r := range b.Requests() {
		if strings.HasPrefix(r.URL, "data:") {
			continue
		}
		if r.URL != origin && !strings.HasPrefix(r.URL, origin+"/") {
			b.t.Errorf("the page requested %s %s; want only %s", r.Method, r.URL, origin)
		}
	}
}

// Screenshot saves a PNG of the whole page as Dir/name and logs where.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := b.Context()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.Dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}
