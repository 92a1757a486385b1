package admin

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// docEndpoint is one "### METHOD /api/v1/..." section of
// docs/admin-api.md and the first JSON example in it.
type docEndpoint struct {
	method, path string
	example      string
}

var (
	docHeading = regexp.MustCompile(`(?m)^### (GET|POST) (/api/v1/\S+)$`)
	docJSON    = regexp.MustCompile("(?s)```json\n(.*?)```")
)

func readAPIDoc(t *testing.T) (string, []docEndpoint) {
	t.Helper()
	b, err := os.ReadFile("../docs/admin-api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	locs := docHeading.FindAllStringSubmatchIndex(doc, -1)
	var eps []docEndpoint
	for i, l := range locs {
		end := len(doc)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		e := docEndpoint{method: doc[l[2]:l[3]], path: doc[l[4]:l[5]]}
		if m := docJSON.FindStringSubmatch(doc[l[1]:end]); m != nil {
			e.example = m[1]
		}
		eps = append(eps, e)
	}
	return doc, eps
}

// TestAPIDoc keeps docs/admin-api.md true: it documents exactly the
// endpoints served, each answers its documented method, every example
// is JSON, and each endpoint's first example has the top-level fields
// the endpoint answers with.
func TestAPIDoc(t *testing.T) {
	doc, documented := readAPIDoc(t)
	if len(documented) == 0 {
		t.Fatal("docs/admin-api.md names no endpoint")
	}
	for _, m := range docJSON.FindAllStringSubmatch(doc, -1) {
		if !json.Valid([]byte(m[1])) {
			t.Errorf("docs/admin-api.md: an example is not JSON:\n%s", m[1])
		}
	}

	// The dashboard's endpoints are another package's: their fields are
	// checked against its Snapshot in its own tests; here, that they are
	// served and documented.
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	served := map[string]bool{}
	for _, e := range append(newAPI(newFakeBackend(), time.Now).endpoints(), dashboardEndpoints(dash)...) {
		served[e.method+" "+e.path] = true
	}
	// Parameters a documented call needs to succeed.
	query := map[string]string{"/api/v1/cache/purge": "?all=true", "/api/v1/cache/explain": "?url=http%3A%2F%2Fexample.com%2Fa"}
	h, err := New(Options{Address: "127.0.0.1:0", Backend: newFakeBackend(), Dashboard: dash,
		Now: func() time.Time { return fakeStart.Add(10 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, e := range documented {
		name := e.method + " " + e.path
		if !served[name] {
			t.Errorf("docs/admin-api.md documents %s; it is not served", name)
			continue
		}
		delete(served, name)
		if strings.HasPrefix(e.path, "/api/v1/dashboard") {
			if status, _, body := do(t, srv, e.method, e.path); status != http.StatusOK {
				t.Errorf("%s: got %d %s; want 200", name, status, body)
			}
			continue
		}
		status, _, got := apiCall(t, srv, e.method, e.path+query[e.path])
		if status != http.StatusOK {
			t.Errorf("%s: got %d %v; want 200", name, status, got)
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(e.example), &want); err != nil {
			t.Errorf("%s: the first example is not a JSON object: %v", name, err)
			continue
		}
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			t.Errorf("%s: answers with fields %v; docs/admin-api.md shows %v", name, g, w)
		}
	}
	for name := range served {
		t.Errorf("%s is served but not in docs/admin-api.md", name)
	}
	if !strings.Contains(doc, "fields are only ever added") {
		t.Error("docs/admin-api.md lost its stability promise")
	}
}
