// Package leakcheck fails a test that leaves goroutines running: servers,
// transports and handlers of the packages under test must all be closed
// by the test's own cleanups.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check registers a cleanup that fails t if, once t's other cleanups
// (registered later, so run earlier) have closed everything, a goroutine
// whose stack mentions one of markers is still running after a grace of
// five seconds. Call it first thing in a top-level test: a parent blocked
// in t.Run would count as a leak in a subtest.
func Check(t testing.TB, markers ...string) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := Running(markers...)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("goroutines left running: got %d; want 0:\n\n%s", len(left), strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Running returns the stacks of the goroutines, other than the caller's,
// that mention one of markers.
func Running(markers ...string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "leakcheck.Running") {
			continue // the goroutine asking
		}
		for _, m := range markers {
			if strings.Contains(g, m) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
