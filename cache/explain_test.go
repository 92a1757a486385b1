package cache

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// The README table is the documentation of the reasons; its rows must be
// the text gateway explain prints.
func TestNotStoredTextMatchesREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for n := NotStoredNone + 1; n < NumNotStored; n++ {
		row := "| `" + n.String() + "` | " + n.Because() + " | " + n.Advice() + " |"
		if !strings.Contains(string(b), row) {
			t.Errorf("README lacks the row\n%s", row)
		}
	}
}

func TestExplain(t *testing.T) {
	o := RouteOptions{Name: "r", TargetedField: "gateway-cache-control", Grace: 600e9}
	req := httptest.NewRequest("GET", "http://example.com/a?x=1", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{
		"Cache-Control":         {"no-store"},
		"Gateway-Cache-Control": {"max-age=60, stale-while-revalidate=5"},
		"Vary":                  {"Accept-Language"},
	}}
	e, err := Explain(o, req, resp, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Stored || e.Lifetime != 60 || e.StaleWhileRevalidate != 5 || e.Grace != 600 || e.DirectivesFrom != "Gateway-Cache-Control" {
		t.Errorf("%+v", e)
	}
	if len(e.Vary) != 1 || e.Vary[0] != "Accept-Language" {
		t.Errorf("vary %v", e.Vary)
	}
	e, _ = Explain(o, req, resp, 101, 100)
	if e.Stored || e.Reason != "too-large" || e.Advice != NotStoredTooLarge.Advice() {
		t.Errorf("%+v", e)
	}
	delete(resp.Header, "Gateway-Cache-Control")
	e, _ = Explain(o, req, resp, 1, 100)
	if e.Stored || e.Reason != "no-store" || e.DirectivesFrom != "Cache-Control" || e.Directives != "no-store" {
		t.Errorf("%+v", e)
	}
}
