package admin

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
)

// indexEntry is one line of the listener's index at "/".
type indexEntry struct {
	method, path, what string
}

// indexEntries lists what the admin listener serves, in the order the
// index shows it: the live page first, for a person who came to look;
// those that need a Backend only with one, /metrics only when served.
func indexEntries(backend, metrics, ui bool) []indexEntry {
	var out []indexEntry
	if backend && ui {
		out = append(out, indexEntry{"GET", "/ui/", "the live dashboard: traffic, latency, cache, upstreams (a page for a browser)"})
	}
	out = append(out,
		indexEntry{"GET", "/healthz", "liveness: 200 while the process serves"},
		indexEntry{"GET", "/readyz", "readiness: 200 when every upstream has a healthy target"},
	)
	if backend {
		out = append(out,
			indexEntry{"GET", "/upstreams", "upstreams and their targets' health"},
			indexEntry{"GET", "/config", "the effective config, secrets redacted"},
			indexEntry{"GET", "/cache/stats", "cache counters (?route=NAME for one route)"},
			indexEntry{"POST", "/cache/purge", "purge by url=, path=, prefix=, tag= or all=true (&route=, &soft=true)"},
			indexEntry{"GET", "/cache/explain", "what the cache would do with url='s response, and why (&header=Name: value)"},
			indexEntry{"GET", "/compress/stats", "compression by coding and route"},
			indexEntry{"GET", "/websocket/stats", "WebSocket tunnels by route (?route=NAME)"},
			indexEntry{"GET", "/jobs/stats", "async routes' job queue: jobs by state, attempts, wait and run time"},
			indexEntry{"GET", "/certificates", "ACME certificates: expiry, renewals, failures by name"},
			indexEntry{"POST", "/reload", "read the config file again"},
			indexEntry{"GET", "/api/v1/status", "JSON API: version, uptime, readiness, config generation"},
			indexEntry{"GET", "/api/v1/upstreams", "JSON API: upstreams, targets, health, circuit breakers"},
			indexEntry{"GET", "/api/v1/cache/stats", "JSON API: cache totals and per-route counters"},
			indexEntry{"POST", "/api/v1/cache/purge", "JSON API: purge by URL, path, prefix, tag or everything"},
			indexEntry{"GET", "/api/v1/cache/explain", "JSON API: what the cache would do with a URL's response, and why"},
			indexEntry{"GET", "/api/v1/compress/stats", "JSON API: compression by coding and route"},
			indexEntry{"GET", "/api/v1/websocket/stats", "JSON API: WebSocket tunnels by route"},
			indexEntry{"GET", "/api/v1/jobs/stats", "JSON API: the async routes' job queue"},
			indexEntry{"GET", "/api/v1/certificates", "JSON API: the ACME listeners' certificates"},
			indexEntry{"POST", "/api/v1/reload", "JSON API: read the config file again"},
			indexEntry{"GET", "/api/v1/config", "JSON API: the effective config, secrets redacted"},
		)
		if ui {
			out = append(out,
				indexEntry{"GET", "/api/v1/dashboard", "JSON API: the live page's snapshot"},
				indexEntry{"GET", "/api/v1/dashboard/events", "the live page's snapshots as Server-Sent Events, one a second"},
			)
		}
	}
	if metrics {
		out = append(out, indexEntry{"GET", "/metrics", "Prometheus metrics"})
	}
	return append(out, indexEntry{"GET", "/debug/pprof/", "Go profiles"})
}

// serveIndex answers GET / with the index as plain text: one endpoint a
// line, method, path (under prefix) and what it is for.
func serveIndex(prefix string, entries []indexEntry) http.HandlerFunc {
	var b strings.Builder
	b.WriteString("gateway admin endpoints (the JSON API under /api/v1/ is described in docs/admin-api.md):\n\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.method, prefix+e.path, e.what)
	}
	_ = tw.Flush()
	body := b.String()
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write([]byte(body))
	}
}
