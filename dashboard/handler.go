package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// The page, built into the binary.
//
//go:embed ui
var uiFS embed.FS

// The paths the Dashboard serves, as the admin listener passes them
// (without its path prefix).
const (
	uiPath     = "/ui/"
	dataPath   = "/api/v1/dashboard"
	eventsPath = "/api/v1/dashboard/events"
)

// csp lets the page load only its own files and talk only to the admin
// origin it came from: no inline script, no third party, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// retryMillis is how long a client waits before it reconnects a stream
// that ended.
const retryMillis = 2000

// writeTimeout bounds one write of the stream, so that a client that
// stopped reading does not keep its handler forever.
const writeTimeout = 10 * time.Second

var _ http.Handler = (*Dashboard)(nil)

// ServeHTTP serves the page (/ui/ and its files) and its data
// (/api/v1/dashboard and /api/v1/dashboard/events).
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == eventsPath:
		d.serveEvents(w, r)
	case p == dataPath:
		d.serveSnapshot(w, r)
	case p == "/ui" || strings.HasPrefix(p, uiPath):
		d.serveStatic(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (d *Dashboard) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s, ok := d.watchGet()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(d.fullJSON(s))
}

// serveEvents streams the samples until the client goes or Close: the
// full snapshot first, then each tick. Every event is flushed, so that
// a fetch() reading the body sees it at once.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// Says the stream is there without watching.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		return
	}
	rc := http.NewResponseController(w)
	sub, first := d.subscribe()
	if sub == nil {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer d.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a front nginx would otherwise hold the events back
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	head := []byte("retry: " + strconv.Itoa(retryMillis) + "\n\n")
	if first == nil || !write(append(head, eventBytes("snapshot", d.fullJSON(first))...)) {
		return
	}
	heartbeat := time.NewTicker(d.o.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		case s := <-sub.ch:
			if s == first {
				continue
			}
			if !write(s.tick) {
				return
			}
		case <-heartbeat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		}
	}
}

// file is one file of the page, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// loadStatic reads the embedded page once: each file with its type and
// an ETag from its content.
func loadStatic() (map[string]*file, error) {
	sub, err := fs.Sub(uiFS, "ui")
	if err != nil {
		return nil, err
	}
	out := map[string]*file{}
	err = fs.WalkDir(sub, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		sum := sha256.Sum256(body)
		out[name] = &file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	return out, err
}

// serveStatic serves the page's files, each answer with the page's
// security headers; /ui goes to ui/ (relative, so that it holds under
// a path prefix, added or stripped by a proxy).
func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path == "/ui" {
		h.Set("Location", "ui/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, uiPath)
	if name == "" {
		name = "index.html"
	}
	f := d.static[name]
	if f == nil {
		http.NotFound(w, r)
		return
	}
	// The files change only with the binary: a browser keeps them and
	// asks each time whether they are still current.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}
