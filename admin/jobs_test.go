package admin

import (
	"net/http"
	"strings"
	"testing"
)

// TestJobStats: both paths answer the queue's counters, and 404 with
// the reason while no route is async.
func TestJobStats(t *testing.T) {
	b := newFakeBackend()
	srv := newAPIServer(t, b, "")
	status, _, v := apiCall(t, srv, "GET", "/api/v1/jobs/stats")
	if status != http.StatusOK || v["queued"] != 2.0 || v["succeeded"] != 5.0 || field(v, "wait", "p99_seconds") != 1.0 || field(v, "run", "count") != 0.0 {
		t.Errorf("GET /api/v1/jobs/stats: got %d %v", status, v)
	}
	if status, _, body := do(t, srv, "GET", "/jobs/stats"); status != http.StatusOK || !strings.Contains(body, `"callback_failures": 0`) {
		t.Errorf("GET /jobs/stats: got %d %s", status, body)
	}
	b.noJobs.Store(true)
	if status, _, v := apiCall(t, srv, "GET", "/api/v1/jobs/stats"); status != http.StatusNotFound || v["error"] != "no route is async" {
		t.Errorf("no async route: GET /api/v1/jobs/stats: got %d %v; want 404 with the reason", status, v)
	}
	if status, _, body := do(t, srv, "GET", "/jobs/stats"); status != http.StatusNotFound || !strings.Contains(body, "no route is async") {
		t.Errorf("no async route: GET /jobs/stats: got %d %q; want 404 with the reason", status, body)
	}
}
