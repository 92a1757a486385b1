// Package demo is the sample backend that `gateway demo` runs on loopback
// behind the gateway, so a newcomer can see the gateway work with one
// command and no other process. Tests use it as a realistic origin.
package demo

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Backend returns the sample backend's handler. name tells instances
// apart, so balancing is visible in the responses.
func Backend(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"message": "hello from the sample backend", "instance": name, "proto": r.Proto})
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{}
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h[k] = r.Header.Get(k)
		}
		writeJSON(w, map[string]any{"instance": name, "method": r.Method, "host": r.Host, "path": r.URL.Path, "headers": h})
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		ms = min(max(ms, 0), 60_000)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, map[string]any{"instance": name, "slept_ms": ms})
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		rc := http.NewResponseController(w)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 || n > 100 {
			n = 5
		}
		for i := 1; i <= n; i++ {
			fmt.Fprintf(w, "id: %d\ndata: {\"tick\": %d, \"instance\": %q}\n\n", i, i, name)
			if rc.Flush() != nil {
				return
			}
			if i == n {
				break
			}
			select {
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	// /cached is what a cacheable API answer looks like: fresh for ttl
	// seconds, with a validator and a purge tag. generated_at shows
	// whether an answer came from the backend or from the cache.
	mux.HandleFunc("GET /cached", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ttl, err := strconv.Atoi(q.Get("ttl"))
		if err != nil || ttl < 0 || ttl > 86400 {
			ttl = 30
		}
		ms, _ := strconv.Atoi(q.Get("ms"))
		select {
		case <-time.After(time.Duration(min(max(ms, 0), 10_000)) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		now := time.Now().UTC()
		// A catalogue page: large enough (about 3 KiB) to be worth
		// compressing, and repetitive like real JSON.
		items := make([]map[string]any, 40)
		for i := range items {
			items[i] = map[string]any{"id": i + 1, "name": fmt.Sprintf("item %d", i+1), "in_stock": i%3 != 0, "price_cents": 100 * (i + 1)}
		}
		body, _ := json.Marshal(map[string]any{"instance": name, "generated_at": now.Format(time.RFC3339Nano), "ttl": ttl, "items": items})
		sum := fnv.New64a()
		sum.Write(body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(ttl))
		h.Set("ETag", fmt.Sprintf(`"%x"`, sum.Sum64()))
		h.Set("Last-Modified", now.Format(http.TimeFormat))
		h.Set("Surrogate-Key", "demo cached")
		_, _ = w.Write(append(body, '\n'))
	})
	// /reports/{name} is long work, the kind an async route takes off
	// the request path: 3 s per report, any method. A cancelled request
	// (a job cancelled, the gateway shutting down) stops it.
	mux.HandleFunc("/reports/{name}", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-time.After(ReportTime):
		case <-r.Context().Done():
			return
		}
		report := r.PathValue("name")
		sum := fnv.New32a()
		sum.Write([]byte(report))
		writeJSON(w, map[string]any{
			"report":       report,
			"instance":     name,
			"method":       r.Method,
			"rows":         100 + sum.Sum32()%900,
			"took_ms":      time.Since(start).Milliseconds(),
			"generated_at": time.Now().UTC().Format(time.RFC3339),
		})
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "want a status between 200 and 599", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d from %s\n", code, name)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// ReportTime is how long the backend takes to make a report.
const ReportTime = 3 * time.Second

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
