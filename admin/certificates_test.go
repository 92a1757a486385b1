package admin

import (
	"net/http"
	"strings"
	"testing"
)

// TestCertificates: the ACME listeners' certificates answer at
// /api/v1/certificates and at /certificates, days left and last error
// included.
func TestCertificates(t *testing.T) {
	srv := newAPIServer(t, newFakeBackend(), "")
	status, _, v := apiCall(t, srv, "GET", "/api/v1/certificates")
	certs, _ := v["certificates"].([]any)
	if status != http.StatusOK || len(certs) != 1 || v["failures"] != float64(2) {
		t.Fatalf("GET /api/v1/certificates: got %d %v", status, v)
	}
	if c := certs[0].(map[string]any); c["days_left"] != 61.5 || c["last_error"] != "CA unreachable" || c["name"] != "a.example" {
		t.Errorf("certificate: %v; want a.example, 61.5 days left, its last error", c)
	}
	if status, _, body := do(t, srv, "GET", "/certificates"); status != http.StatusOK || !strings.Contains(body, `"days_left": 61.5`) {
		t.Errorf("GET /certificates: got %d %s", status, body)
	}
}
