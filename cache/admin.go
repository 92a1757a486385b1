package cache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// AdminHandler serves the cache's operator endpoints:
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
// The gateway's admin listener serves the same endpoints itself (package
// admin) from Stats, ParsePurge and Purge.
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
	p, err := ParsePurge(r.URL.Query())
	var n int
	if err == nil {
		n, err = c.Purge(r.Context(), p)
	}
	switch {
	case errors.Is(err, ErrStore):
		writeJSON(w, http.StatusInternalServerError, map[string]any{"purged": n, "soft": p.Soft, "error": err.Error()})
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]any{"purged": n, "soft": p.Soft})
	}
}

// Purge names what to purge: exactly one of URL, Prefix, Tag and All.
type Purge struct {
	// URL purges every stored variant of an absolute http or https URL.
	URL string
	// Prefix purges everything under an absolute URL prefix (no query).
	Prefix string
	// Tag purges everything tagged Tag (Surrogate-Key, Cache-Tag), exact
	// match.
	Tag string
	// All purges everything.
	All bool
	// Soft marks entries stale instead of removing them, so that
	// stale-if-error can still serve them while the origin is down.
	Soft bool
}

// ParsePurge reads a purge from the admin endpoint's query parameters
// (url, prefix, tag, all=true, soft=true) and checks it: a Purge it
// returns without error is one Cache.Purge accepts. Its errors are the
// client's to fix.
func ParsePurge(q url.Values) (Purge, error) {
	var p Purge
	switch v := q.Get("soft"); v {
	case "", "false", "0":
	case "true", "1":
		p.Soft = true
	default:
		return Purge{}, errors.New("soft: want true or false")
	}
	set := 0
	for _, k := range [...]string{"url", "prefix", "tag", "all"} {
		if q.Has(k) {
			set++
		}
	}
	if set != 1 {
		return Purge{}, errors.New("give exactly one of url, prefix, tag or all")
	}
	switch {
	case q.Has("tag"):
		if p.Tag = q.Get("tag"); p.Tag == "" {
			return Purge{}, errors.New("tag: empty")
		}
	case q.Has("all"):
		if v := q.Get("all"); v != "true" && v != "1" {
			return Purge{}, errors.New("all: want true")
		}
		p.All = true
	case q.Has("prefix"):
		p.Prefix = q.Get("prefix")
		if _, err := parsePurgeURL(p.Prefix, true); err != nil {
			return Purge{}, err
		}
	default:
		p.URL = q.Get("url")
		if _, err := parsePurgeURL(p.URL, false); err != nil {
			return Purge{}, err
		}
	}
	return p, nil
}

// check reports what is wrong with p: not exactly one target, a URL
// that is not absolute, a prefix with a query.
func (p Purge) check() error {
	set := 0
	for _, b := range [...]bool{p.URL != "", p.Prefix != "", p.Tag != "", p.All} {
		if b {
			set++
		}
	}
	if set != 1 {
		return errors.New("give exactly one of url, prefix, tag or all")
	}
	var err error
	switch {
	case p.URL != "":
		_, err = parsePurgeURL(p.URL, false)
	case p.Prefix != "":
		_, err = parsePurgeURL(p.Prefix, true)
	}
	return err
}

// parsePurgeURL parses the absolute URL of a purge by url or prefix.
func parsePurgeURL(raw string, prefix bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, purgeError("want an absolute http or https URL")
	}
	if prefix && u.RawQuery != "" {
		return nil, purgeError("prefix: a prefix has no query")
	}
	return u, nil
}

// Purge removes what p names, or marks it stale when p.Soft, and
// returns how many entries it touched. An error wrapping ErrStore is the
// store's; any other (a URL that is not absolute, a prefix with a query,
// not exactly one target) is the caller's to fix, and nothing was purged
// then.
func (c *Cache) Purge(ctx context.Context, p Purge) (int, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	var n int
	var err error
	switch {
	case p.Tag != "":
		n, err = c.store.PurgeTag(ctx, p.Tag, p.Soft)
	case p.All:
		n, err = c.store.PurgeAll(ctx, p.Soft)
	default:
		prefix := p.Prefix != ""
		raw := p.URL
		if prefix {
			raw = p.Prefix
		}
		parts, perr := c.urlParts(raw, prefix)
		if perr != nil {
			return 0, perr
		}
		for _, part := range parts {
			var k int
			var e error
			if prefix {
				k, e = c.store.PurgePrefix(ctx, part, p.Soft)
			} else {
				k, e = c.store.PurgeURL(ctx, part, p.Soft)
			}
			n += k
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		// Some of it may be done: n says how much, the error that it is
		// not all.
		c.storeFailed("purge", err)
		return n, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return n, nil
}

// ErrStore marks a purge the store failed, in part or in whole; the
// count returned with it is what was done. Any other error of Purge is
// the caller's to fix.
var ErrStore = errors.New("cache: the store failed")

type purgeError string

func (e purgeError) Error() string { return string(e) }

// urlParts turns an absolute URL into the URL parts of the keys each
// cached route would store it under (routes may ignore different query
// parameters). For a prefix the part stops after the path, so that it is
// a byte prefix of every key below it.
func (c *Cache) urlParts(raw string, prefix bool) ([]string, error) {
	u, err := parsePurgeURL(raw, prefix)
	if err != nil {
		return nil, err
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
