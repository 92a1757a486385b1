package cache

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// AdminHandler serves the cache's operator endpoints, mounted on the admin
// listener:
//
//	GET  /cache/stats                 totals and per-route counters (JSON)
//	GET  /cache/stats?route=NAME      one route's counters
//	POST /cache/purge?url=URL         every stored variant of URL
//	POST /cache/purge?prefix=URL      everything under a URL prefix
//	POST /cache/purge?tag=TAG         everything tagged TAG (exact match)
//	POST /cache/purge?all=true        everything
//
// Add soft=true to a purge to mark entries stale instead of removing them,
// so that stale-if-error can still serve them while the origin is down.
// URLs are absolute (http://host/path?query), as clients request them.
func (c *Cache) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cache/stats", c.serveStats)
	mux.HandleFunc("POST /cache/purge", c.servePurge)
	return mux
}

func (c *Cache) serveStats(w http.ResponseWriter, r *http.Request) {
	total, routes := c.Stats()
	if name := r.URL.Query().Get("route"); name != "" {
		s, ok := routes[name]
		if !ok {
			httpError(w, http.StatusNotFound, "no cached route named "+name)
			return
		}
		writeJSON(w, http.StatusOK, s)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Stats
		Routes map[string]RouteStats `json:"routes"`
	}{total, routes})
}

func (c *Cache) servePurge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	soft := false
	switch v := q.Get("soft"); v {
	case "", "false", "0":
	case "true", "1":
		soft = true
	default:
		httpError(w, http.StatusBadRequest, "soft: want true or false")
		return
	}
	var n int
	set := 0
	for _, k := range [...]string{"url", "prefix", "tag", "all"} {
		if q.Has(k) {
			set++
		}
	}
	if set != 1 {
		httpError(w, http.StatusBadRequest, "give exactly one of url, prefix, tag or all")
		return
	}
	ctx := r.Context()
	var err error
	switch {
	case q.Has("tag"):
		tag := q.Get("tag")
		if tag == "" {
			httpError(w, http.StatusBadRequest, "tag: empty")
			return
		}
		n, err = c.store.PurgeTag(ctx, tag, soft)
	case q.Has("all"):
		if v := q.Get("all"); v != "true" && v != "1" {
			httpError(w, http.StatusBadRequest, "all: want true")
			return
		}
		n, err = c.store.PurgeAll(ctx, soft)
	default:
		prefix := q.Has("prefix")
		raw := q.Get("url")
		if prefix {
			raw = q.Get("prefix")
		}
		parts, perr := c.urlParts(raw, prefix)
		if perr != nil {
			httpError(w, http.StatusBadRequest, perr.Error())
			return
		}
		for _, p := range parts {
			var k int
			var e error
			if prefix {
				k, e = c.store.PurgePrefix(ctx, p, soft)
			} else {
				k, e = c.store.PurgeURL(ctx, p, soft)
			}
			n += k
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		// Some of it may be done: say how much, and that it is not all.
		c.storeFailed("purge", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"purged": n, "soft": soft, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": n, "soft": soft})
}

type purgeError string

func (e purgeError) Error() string { return string(e) }

// urlParts turns an absolute URL into the URL parts of the keys each
// cached route would store it under (routes may ignore different query
// parameters). For a prefix the part stops after the path, so that it is
// a byte prefix of every key below it.
func (c *Cache) urlParts(raw string, prefix bool) ([]string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, purgeError("want an absolute http or https URL")
	}
	if prefix && u.RawQuery != "" {
		return nil, purgeError("prefix: a prefix has no query")
	}
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	if u.Scheme == "https" {
		req.TLS = &tls.ConnectionState{}
	}
	c.mu.Lock()
	routes := append([]*Route(nil), c.routes...)
	c.mu.Unlock()
	var parts []string
	for _, rt := range routes {
		p := URLPart(rt.keyer.Key(req))
		if prefix {
			// The key ends with an empty query component: drop its
			// separator so that "/api/" also matches "/api/x?y".
			p = strings.TrimSuffix(p, "\x00")
		}
		dup := false
		for _, q := range parts {
			dup = dup || q == p
		}
		if !dup {
			parts = append(parts, p)
		}
	}
	return parts, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
