package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"gateway/internal/fielderr"
)

// Composite serves a route that has parts instead of an upstream: each
// request fetches every part concurrently, in-process through the same
// handler as any request (so through the parts' routes, limits and
// caches), and answers one JSON object with each part's JSON body under
// its key.
//
// The route's path is a pattern: literal segments and {name} segments,
// matched segment by segment, with exactly as many segments as the
// pattern. The proxy routes by prefix, so the route is registered under
// Prefix (the literal segments before the first {name}) and the
// composite answers 404 itself to paths under that prefix that do not
// fit the pattern. The values of the {name} segments are substituted,
// escaped, into the parts' paths.
type Composite struct {
	name    string
	pattern *Pattern
	parts   []compiledPart
	omit    bool
	maxPart int64
	log     *slog.Logger
	h       http.Handler
}

// Part is one piece of a composite response.
type Part struct {
	// Key is the part's name in the response object.
	Key string
	// Path is the part's request path and query, with {name} references
	// to the route's path parameters, e.g. /orders?user={user}.
	Path string
}

// On-error policies of a composite.
const (
	// OnErrorFail answers 502 for the whole when any part fails.
	OnErrorFail = "fail"
	// OnErrorOmit leaves failed parts out and names them under "errors".
	OnErrorOmit = "omit"
)

// ErrorsKey holds the failed parts under OnErrorOmit, so no part may use
// it as its key.
const ErrorsKey = "errors"

// CompositeOptions configure a composite route.
type CompositeOptions struct {
	// Name is the route's name, for the log.
	Name string
	// Path is the route's path pattern, e.g. /dashboard/{user}.
	Path  string
	Parts []Part
	// OnError is OnErrorFail ("" too) or OnErrorOmit.
	OnError string
	// MaxPartSize bounds each part's body; 0 means 4 MiB.
	MaxPartSize int64
	Logger      *slog.Logger
}

// Validate reports every problem with o, each a *fielderr.Error naming
// its field (OnError, Path, Parts, or Parts.Key and Parts.Path with the
// part's index), joined. The parts' paths are checked against the
// route's path only when that is a good pattern.
func (o CompositeOptions) Validate() error {
	var errs []error
	bad := func(field string, i int, msg string) *fielderr.Error {
		e := fielderr.At("composite", field, i, msg)
		errs = append(errs, e)
		return e
	}
	switch o.OnError {
	case "", OnErrorFail, OnErrorOmit:
	default:
		bad("OnError", -1, fmt.Sprintf("invalid value %q (want %s or %s)", o.OnError, OnErrorFail, OnErrorOmit))
	}
	pat, err := ParsePattern(o.Path)
	if err != nil {
		bad("Path", -1, strings.TrimPrefix(err.Error(), "path "))
	}
	if len(o.Parts) == 0 {
		bad("Parts", -1, `no parts (want at least one, e.g. - {key: profile, path: "/users/{user}"})`)
	}
	keys := map[string]int{}
	for i, part := range o.Parts {
		if err := CheckPartKey(part.Key); err != nil {
			bad("Parts.Key", i, err.Error())
		} else if j, dup := keys[part.Key]; dup {
			bad("Parts.Key", i, fmt.Sprintf("duplicate key %q", part.Key)).Also = j
		} else {
			keys[part.Key] = i
		}
		switch {
		case part.Path == "":
			bad("Parts.Path", i, "missing (want a path such as /users/{user})")
		case pat != nil:
			if _, err := pat.ParseTemplate(part.Path); err != nil {
				bad("Parts.Path", i, strings.TrimPrefix(err.Error(), "path "))
			}
		}
	}
	return errors.Join(errs...)
}

// NewComposite checks o (see Validate). The handler that fetches the
// parts is given later, with Bind, since it is the one the composite is
// a route of.
func NewComposite(o CompositeOptions) (*Composite, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("composite %s: %w", o.Name, err)
	}
	p, _ := ParsePattern(o.Path) // checked by Validate
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxPartSize == 0 {
		o.MaxPartSize = DefaultMaxResponseSize
	}
	c := &Composite{name: o.Name, pattern: p, maxPart: o.MaxPartSize, log: o.Logger, omit: o.OnError == OnErrorOmit}
	for _, part := range o.Parts {
		t, _ := p.ParseTemplate(part.Path) // checked by Validate
		c.parts = append(c.parts, compiledPart{key: part.Key, tmpl: t})
	}
	return c, nil
}

// CheckPartKey reports whether key may name a part.
func CheckPartKey(key string) error {
	switch {
	case key == "":
		return errors.New("missing key")
	case key == ErrorsKey:
		return fmt.Errorf("key %q is where failed parts are listed", ErrorsKey)
	}
	return nil
}

// Prefix is the path prefix to route to the composite: its pattern's
// literal segments before the first {name}.
func (c *Composite) Prefix() string { return c.pattern.prefix }

// Bind sets the handler the parts are fetched through; call it before
// serving.
func (c *Composite) Bind(h http.Handler) { c.h = h }

type compiledPart struct {
	key  string
	tmpl *Template
}

// maxNesting bounds composites whose parts are composites.
const maxNesting = 4

type chainKey struct{}

// chain is the composites a request is already inside, innermost first.
type chain struct {
	c      *Composite
	parent *chain
	depth  int
}

// partOutcome is one part's answer, or why it failed.
type partOutcome struct {
	body   []byte // a JSON value when err is ""
	status int
	err    string
}

// ServeHTTP answers GET and HEAD with the combined parts.
func (c *Composite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method not allowed"))
		return
	}
	if c.h == nil {
		c.log.Error("batch: composite route served before Bind", "route", c.name)
		writeJSON(w, http.StatusInternalServerError, errorBody("internal error"))
		return
	}
	params, err := c.pattern.Match(r.URL.EscapedPath())
	if err != nil {
		status := http.StatusNotFound
		if !errors.Is(err, errNoMatch) {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, errorBody(err.Error()))
		return
	}
	outer, _ := r.Context().Value(chainKey{}).(*chain)
	for ch := outer; ch != nil; ch = ch.parent {
		if ch.c == c {
			writeJSON(w, http.StatusLoopDetected, errorBody("composite includes itself"))
			return
		}
	}
	if outer != nil && outer.depth+1 >= maxNesting {
		writeJSON(w, http.StatusLoopDetected, errorBody("composites nested too deep"))
		return
	}
	me := &chain{c: c, parent: outer}
	if outer != nil {
		me.depth = outer.depth + 1
	}
	ctx := context.WithValue(r.Context(), chainKey{}, me)

	outcomes := make([]partOutcome, len(c.parts))
	hdr := partHeader(r.Header)
	var wg sync.WaitGroup
	for i, p := range c.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ph := hdr.Clone()
			numberRequestID(ph, i+1)
			outcomes[i] = c.fetch(ctx, r, p, params, ph)
		}()
	}
	wg.Wait()

	var buf bytes.Buffer
	buf.WriteByte('{')
	var errs []int
	for i, o := range outcomes {
		if o.err != "" {
			errs = append(errs, i)
			continue
		}
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		writeKey(&buf, c.parts[i].key)
		_ = json.Compact(&buf, o.body)
	}
	if len(errs) > 0 && (!c.omit || len(errs) == len(c.parts)) {
		first := errs[0]
		for _, i := range errs {
			c.log.Warn("batch: composite part failed", "route", c.name, "part", c.parts[i].key, "status", outcomes[i].status, "err", outcomes[i].err)
		}
		msg := fmt.Sprintf("part %s failed: %s", c.parts[first].key, outcomes[first].err)
		if len(errs) == len(c.parts) && len(c.parts) > 1 {
			msg = "every part failed"
		}
		b, _ := json.Marshal(struct {
			Error  string                `json:"error"`
			Part   string                `json:"part,omitempty"`
			Status int                   `json:"status,omitempty"`
			Errors map[string]partStatus `json:"errors"`
		}{msg, c.parts[first].key, outcomes[first].status, c.errorMap(outcomes, errs)})
		writeJSON(w, http.StatusBadGateway, b)
		return
	}
	if len(errs) > 0 {
		for _, i := range errs {
			c.log.Debug("batch: composite part omitted", "route", c.name, "part", c.parts[i].key, "status", outcomes[i].status, "err", outcomes[i].err)
		}
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		writeKey(&buf, ErrorsKey)
		b, _ := json.Marshal(c.errorMap(outcomes, errs))
		buf.Write(b)
	}
	buf.WriteByte('}')
	writeJSON(w, http.StatusOK, buf.Bytes())
}

type partStatus struct {
	Status int    `json:"status,omitempty"`
	Error  string `json:"error"`
}

func (c *Composite) errorMap(outcomes []partOutcome, errs []int) map[string]partStatus {
	m := make(map[string]partStatus, len(errs))
	for _, i := range errs {
		m[c.parts[i].key] = partStatus{outcomes[i].status, outcomes[i].err}
	}
	return m
}

// fetch runs one part through the bound handler.
func (c *Composite) fetch(ctx context.Context, r *http.Request, p compiledPart, params map[string]string, hdr http.Header) partOutcome {
	target := p.tmpl.Expand(params)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return partOutcome{status: http.StatusBadGateway, err: "invalid part path"}
	}
	res := serve(c.h, subRequest(ctx, r, http.MethodGet, u, r.Host, hdr, nil), c.maxPart, nil, c.log)
	switch {
	case errors.Is(res.ctxErr, context.DeadlineExceeded):
		return partOutcome{status: http.StatusGatewayTimeout, err: "timeout"}
	case res.tooLarge:
		return partOutcome{status: http.StatusBadGateway, err: fmt.Sprintf("body over %d bytes", c.maxPart)}
	case res.aborted:
		return partOutcome{status: http.StatusBadGateway, err: "response aborted"}
	case res.status < 200 || res.status > 299:
		return partOutcome{status: res.status, err: "status " + strconv.Itoa(res.status)}
	case !jsonBody(res.header, res.body):
		return partOutcome{status: res.status, err: "not a JSON body"}
	}
	return partOutcome{status: res.status, body: res.body}
}

func writeKey(buf *bytes.Buffer, key string) {
	b, _ := json.Marshal(key)
	buf.Write(b)
	buf.WriteByte(':')
}

// writeJSON sends a JSON body, the batch endpoint's and a composite
// route's. Either is built from responses that may be per user, so it
// is never stored downstream; the parts are cached on their own routes.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Pattern is a composite route's path: literal and {name} segments.
type Pattern struct {
	segs   []patSeg
	params []string
	prefix string
}

type patSeg struct {
	lit   string
	param string // set for a {name} segment
}

var errNoMatch = errors.New("no route")

// ParsePattern reads a path pattern such as /dashboard/{user}: an
// absolute path whose segments are literal or a whole {name}, names
// being letters, digits and "_", each used once.
func ParsePattern(p string) (*Pattern, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("path %q must start with \"/\"", p)
	}
	if strings.ContainsAny(p, "?#") {
		return nil, fmt.Errorf("path %q: a path cannot hold \"?\" or \"#\"", p)
	}
	pat := &Pattern{}
	seen := map[string]bool{}
	var lits []string
	for s := range strings.SplitSeq(p[1:], "/") {
		if !strings.ContainsAny(s, "{}") {
			pat.segs = append(pat.segs, patSeg{lit: s})
			if len(pat.params) == 0 {
				lits = append(lits, s)
			}
			continue
		}
		name, ok := strings.CutPrefix(s, "{")
		name, ok2 := strings.CutSuffix(name, "}")
		if !ok || !ok2 || !isParamName(name) {
			return nil, fmt.Errorf("path %q: segment %q: a parameter is a whole segment {name}, name of letters, digits and _", p, s)
		}
		if seen[name] {
			return nil, fmt.Errorf("path %q: parameter {%s} used twice", p, name)
		}
		seen[name] = true
		pat.segs = append(pat.segs, patSeg{param: name})
		pat.params = append(pat.params, name)
	}
	pat.prefix = "/" + strings.Join(lits, "/")
	if len(pat.params) > 0 && len(lits) > 0 {
		// "/dashboard/{user}": the prefix is /dashboard, which the proxy
		// matches by whole segments.
		pat.prefix = strings.TrimSuffix(pat.prefix, "/")
		if pat.prefix == "" {
			pat.prefix = "/"
		}
	}
	return pat, nil
}

// Params are the pattern's parameter names, in order.
func (p *Pattern) Params() []string { return append([]string(nil), p.params...) }

// Prefix is the literal part of the pattern before its first parameter.
func (p *Pattern) Prefix() string { return p.prefix }

// Match matches an escaped request path against the pattern and returns
// the parameters, unescaped. An empty segment fills no parameter. A
// value that is "." or "..", or holds "/" (as %2F), is refused:
// substituted into a part's path it could change which route the part
// reaches.
func (p *Pattern) Match(escapedPath string) (map[string]string, error) {
	if escapedPath == "" || escapedPath[0] != '/' {
		return nil, errNoMatch
	}
	segs := strings.Split(escapedPath[1:], "/")
	if len(segs) != len(p.segs) {
		return nil, errNoMatch
	}
	params := make(map[string]string, len(p.params))
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil {
			return nil, errNoMatch
		}
		ps := p.segs[i]
		if ps.param == "" {
			if v != ps.lit {
				return nil, errNoMatch
			}
			continue
		}
		if v == "" {
			return nil, errNoMatch
		}
		if v == "." || v == ".." || strings.Contains(v, "/") || !validValue(v) {
			return nil, fmt.Errorf("invalid value for path parameter {%s}", ps.param)
		}
		params[ps.param] = v
	}
	return params, nil
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Template is a part's path with {name} references: escaped as a path
// segment before the "?", as a query value after it.
type Template struct {
	chunks []tmplChunk
}

type tmplChunk struct {
	lit   string
	param string
	query bool
}

// ParseTemplate reads a part path such as /orders?user={user}; every
// {name} must be a parameter of p.
func (p *Pattern) ParseTemplate(s string) (*Template, error) {
	if s == "" || s[0] != '/' {
		return nil, fmt.Errorf("path %q must start with \"/\"", s)
	}
	if strings.Contains(s, "#") {
		return nil, fmt.Errorf("path %q: a fragment is never sent", s)
	}
	t := &Template{}
	query := false
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}?")
		if i < 0 {
			t.chunks = append(t.chunks, tmplChunk{lit: rest})
			break
		}
		if i > 0 {
			t.chunks = append(t.chunks, tmplChunk{lit: rest[:i]})
		}
		switch rest[i] {
		case '?':
			query = true
			t.chunks = append(t.chunks, tmplChunk{lit: "?"})
			rest = rest[i+1:]
			continue
		case '}':
			return nil, fmt.Errorf("path %q: \"}\" without \"{\"", s)
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("path %q: \"{\" without \"}\"", s)
		}
		name := rest[i+1 : i+end]
		if !isParamName(name) {
			return nil, fmt.Errorf("path %q: invalid parameter {%s}", s, name)
		}
		if !containsString(p.params, name) {
			want := "the route's path has none"
			if len(p.params) > 0 {
				want = "the route's path has {" + strings.Join(p.params, "}, {") + "}"
			}
			return nil, fmt.Errorf("path %q: unknown parameter {%s} (%s)", s, name, want)
		}
		t.chunks = append(t.chunks, tmplChunk{param: name, query: query})
		rest = rest[i+end+1:]
	}
	// The literal parts must make a request target once values are in.
	probe := map[string]string{}
	for _, n := range p.params {
		probe[n] = "x"
	}
	if _, err := url.ParseRequestURI(t.Expand(probe)); err != nil {
		return nil, fmt.Errorf("path %q: %v", s, unwrapURLError(err))
	}
	return t, nil
}

// Expand substitutes the parameters, escaped for where they stand.
func (t *Template) Expand(params map[string]string) string {
	var b strings.Builder
	for _, c := range t.chunks {
		switch {
		case c.param == "":
			b.WriteString(c.lit)
		case c.query:
			b.WriteString(url.QueryEscape(params[c.param]))
		default:
			b.WriteString(url.PathEscape(params[c.param]))
		}
	}
	return b.String()
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
