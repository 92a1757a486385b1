package batch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// batchError is a batch request the endpoint refuses as a whole, written as
// {"error": "...", "item": 3, "id": "x"}; item and id are there when the
// problem is in one item (id when that item has one).
type batchError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Item   *int   `json:"item,omitempty"`
	ID     string `json:"id,omitempty"`
}

func (e *batchError) Error() string {
	if e.Item == nil {
		return e.Msg
	}
	if e.ID != "" {
		return fmt.Sprintf("item %d (id %q): %s", *e.Item, e.ID, e.Msg)
	}
	return fmt.Sprintf("item %d: %s", *e.Item, e.Msg)
}

// maxIDLen bounds an item's id, which is echoed in the response.
const maxIDLen = 256

// methods are those an item may use.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// item is one validated sub-request of a batch.
type item struct {
	index  int
	id     string
	method string
	url    *url.URL
	host   string // "" means the outer request's Host
	header http.Header
	body   []byte
}

// wireItem is an item as written in the request body.
type wireItem struct {
	ID         string            `json:"id"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Host       string            `json:"host"`
	Headers    map[string]string `json:"headers"`
	Body       json.RawMessage   `json:"body"`
	BodyBase64 *string           `json:"body_base64"`
}

// limits are what parseBatch checks besides syntax.
type limits struct {
	maxItems  int
	batchPath string // an item may not call it
}

// parseBatch decodes and validates a batch request body. Unknown fields
// are errors at every level, so a typo ("header" for "headers") is
// reported rather than silently ignored; so are a field given twice and
// text that is not UTF-8 (see checkText), which decoding alone would
// resolve silently.
func parseBatch(data []byte, lim limits) ([]*item, *batchError) {
	var top struct {
		Requests []json.RawMessage `json:"requests"`
	}
	if err := decodeStrict(data, &top); err != nil {
		return nil, &batchError{Status: http.StatusBadRequest, Msg: "malformed batch: " + jsonError(err)}
	}
	switch n := len(top.Requests); {
	case n == 0:
		return nil, &batchError{Status: http.StatusBadRequest, Msg: `no requests (want {"requests": [{"id": "a", "path": "/..."}]})`}
	case n > lim.maxItems:
		return nil, &batchError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("too many requests: %d (at most %d)", n, lim.maxItems)}
	}
	if p := checkText(data); p != nil {
		if p.item < 0 {
			return nil, &batchError{Status: http.StatusBadRequest, Msg: "malformed batch: " + p.msg}
		}
		id := ""
		if !p.idUnsure {
			id = looseID(data[p.itemStart:])
		}
		return nil, itemError(p.item, id, p.msg)
	}
	items := make([]*item, 0, len(top.Requests))
	ids := make(map[string]int, len(top.Requests))
	for i, raw := range top.Requests {
		it, err := parseItem(i, raw, lim)
		if err != nil {
			return nil, err
		}
		if j, dup := ids[it.id]; dup {
			return nil, itemError(i, it.id, fmt.Sprintf("duplicate id (also item %d)", j))
		}
		ids[it.id] = i
		items = append(items, it)
	}
	return items, nil
}

func itemError(i int, id, msg string) *batchError {
	return &batchError{Status: http.StatusBadRequest, Msg: msg, Item: &i, ID: id}
}

func parseItem(i int, raw json.RawMessage, lim limits) (*item, *batchError) {
	var w wireItem
	if err := decodeStrict(raw, &w); err != nil {
		return nil, itemError(i, looseID(raw), jsonError(err))
	}
	fail := func(format string, args ...any) (*item, *batchError) {
		return nil, itemError(i, w.ID, fmt.Sprintf(format, args...))
	}
	switch {
	case w.ID == "":
		return fail(`missing id`)
	case len(w.ID) > maxIDLen:
		w.ID = w.ID[:maxIDLen]
		return fail("id longer than %d bytes", maxIDLen)
	}
	it := &item{index: i, id: w.ID, method: strings.ToUpper(w.Method), header: http.Header{}}
	if it.method == "" {
		it.method = http.MethodGet
	}
	if !methods[it.method] {
		return fail("method %q not allowed (want GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)", w.Method)
	}

	if w.Path == "" {
		return fail("missing path")
	}
	if w.Path[0] != '/' {
		return fail(`path %q must start with "/"`, w.Path)
	}
	for _, c := range []byte(w.Path) {
		if c <= ' ' || c == 0x7f || c == '#' {
			return fail("path %q: control characters, spaces and fragments are not allowed", w.Path)
		}
	}
	u, err := url.ParseRequestURI(w.Path)
	if err != nil {
		return fail("path %q: %v", w.Path, unwrapURLError(err))
	}
	if samePath(u.Path, lim.batchPath) {
		return fail("a batch may not contain a batch (path %q)", w.Path)
	}
	it.url = u

	if w.Host != "" {
		if err := checkHost(w.Host); err != nil {
			return fail("host %q: %v", w.Host, err)
		}
		it.host = w.Host
	}

	for _, name := range slices.Sorted(maps.Keys(w.Headers)) {
		v := w.Headers[name]
		if !httpguts.ValidHeaderFieldName(name) {
			return fail("invalid header name %q", name)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if why := forbidden(c); why != "" {
			if c == "Host" {
				why += ` (use the item's "host" field)`
			}
			return fail("header %s %s", name, why)
		}
		if !validValue(v) {
			return fail("header %s: invalid value", name)
		}
		if _, dup := it.header[c]; dup {
			return fail("header %s given twice", name)
		}
		it.header[c] = []string{v}
	}
	// Sub-response bodies are embedded in the batch response, which is
	// where compression belongs; a compressed body would be base64 too.
	delete(it.header, "Accept-Encoding")

	hasBody := len(w.Body) > 0 && !bytes.Equal(bytes.TrimSpace(w.Body), []byte("null"))
	switch {
	case hasBody && w.BodyBase64 != nil:
		return fail("body and body_base64 are exclusive")
	case hasBody:
		it.body = w.Body
		if it.header.Get("Content-Type") == "" {
			it.header.Set("Content-Type", "application/json")
		}
	case w.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*w.BodyBase64)
		if err != nil {
			return fail("body_base64: %v", err)
		}
		it.body = b
	}
	return it, nil
}

// looseID is the id of the item whose JSON starts data, to name it by in
// an error: "" when there is none to read, or when it reads other than
// written (U+FFFD for text that is not UTF-8).
func looseID(data []byte) string {
	var loose struct {
		ID any `json:"id"`
	}
	_ = json.NewDecoder(bytes.NewReader(data)).Decode(&loose)
	id, _ := loose.ID.(string)
	if strings.ContainsRune(id, utf8.RuneError) {
		return ""
	}
	return id
}

// decodeStrict decodes exactly one JSON value, refusing unknown fields
// and anything after the value.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// jsonError words a decoding error for a client.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("want an object, got %s", te.Value)
		}
		return fmt.Sprintf("field %s: got %s, want %s", field, te.Value, jsonType(te.Type.String()))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonType(goType string) string {
	switch {
	case goType == "string", goType == "*string":
		return "a string"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "an object"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkHost accepts host or host:port as a Host header holds them.
func checkHost(h string) error {
	if strings.ContainsAny(h, "/?#@ \\") {
		return errors.New("want a host name, optionally with :port")
	}
	for _, c := range []byte(h) {
		if c < 0x21 || c >= 0x7f {
			return errors.New("want a host name, optionally with :port")
		}
	}
	u, err := url.Parse("http://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return errors.New("want a host name, optionally with :port")
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return errors.New("invalid port")
		}
	}
	return nil
}

// samePath reports whether p names the batch path, once dot segments
// and a trailing slash are set aside.
func samePath(p, batchPath string) bool {
	if p == batchPath {
		return true
	}
	c := path.Clean("/" + p)
	return c == strings.TrimSuffix(batchPath, "/") || c == batchPath
}
