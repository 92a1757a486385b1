package observe

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gateway/internal/jobid"
	"gateway/internal/routes"
)

// TestJobInAccessLog: with Jobs set, a job id handed to the request's
// context recorder (as the job queue does, for the 202 it answers and for
// each attempt it runs) is in the request's access log line, in every
// format; a request without one has no job field, and without Jobs no
// recorder is placed.
func TestJobInAccessLog(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/job" {
			jobid.Record(r.Context(), id)
			w.WriteHeader(http.StatusAccepted)
		}
	})
	for _, tc := range []struct{ format, want string }{
		{"text", " job=" + id + "\n"},
		{"json", `,"job":"` + id + `"}`},
	} {
		for _, jobs := range []bool{true, false} {
			var logs bytes.Buffer
			h := Wrap(next, Options{Log: NewHandler(tc.format, &logs), Routes: routes.New([]string{"r"}, false), Jobs: jobs})
			for _, path := range []string{"/job", "/plain"} {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "http://example.com"+path, nil))
			}
			lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%s: got %q; want two lines", tc.format, logs.String())
			}
			if got := strings.HasSuffix(lines[0]+"\n", tc.want) || strings.Contains(lines[0], tc.want); got != jobs {
				t.Errorf("%s, Jobs %v: got %q; want the job named: %v", tc.format, jobs, lines[0], jobs)
			}
			if strings.Contains(lines[1], "job") {
				t.Errorf("%s: got %q; want no job on a request without one", tc.format, lines[1])
			}
		}
	}
}
