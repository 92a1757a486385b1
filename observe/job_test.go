package observe

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gateway/internal/jobid"
	"gateway/internal/outcome"
	"gateway/internal/routes"
	"gateway/proxy"
)

// TestJobInAccessLog: a job id handed to the proxy's observation (the
// outcome Recorder in the request's context, as the proxy places it) is
// printed by the access log in either format; a request without one has
// no job field.
func TestJobInAccessLog(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the proxy does with the observation its writer offers.
		if o := w.(proxy.Observed).Observation(); o != nil {
			r = r.WithContext(outcome.NewContext(r.Context(), o))
		}
		if r.URL.Path == "/job" {
			jobid.Record(r.Context(), id)
			w.WriteHeader(http.StatusAccepted)
		}
	})
	for _, tc := range []struct{ format, want string }{
		{"text", " job=" + id},
		{"json", `"job":"` + id + `"`},
	} {
		var logs bytes.Buffer
		h := Wrap(next, Options{Log: NewHandler(tc.format, &logs), Routes: routes.New([]string{"r"}, false)})
		for _, path := range []string{"/job", "/plain"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "http://example.com"+path, nil))
		}
		lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: got %q; want two lines", tc.format, logs.String())
		}
		if !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s: got %q; want the job named", tc.format, lines[0])
		}
		if strings.Contains(lines[1], "job") {
			t.Errorf("%s: got %q; want no job on a request without one", tc.format, lines[1])
		}
	}
}
