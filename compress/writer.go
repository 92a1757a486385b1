package compress

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"gateway/internal/httpmethod"
)

// Wrap returns the streaming compression middleware around next. It
// decides per response, when the handler writes the header:
//
//  1. A handler that called SkipCompression (see Skipper) or marked its
//     header with PassThrough, a 101
//     Switching Protocols (upgrades, then Hijack), a hijacked
//     connection and a request with Cache-Control: no-transform pass
//     through untouched; so do 1xx informational responses, which
//     precede the real one.
//  2. A 304 passes through with Vary: Accept-Encoding added, and with
//     the coding's suffix put back on its ETag when the client's
//     If-None-Match named the variant of the coding it negotiated (see
//     below).
//  3. A body the upstream encoded already (Content-Encoding gzip, br or
//     zstd) is passed on unchanged when Negotiate picks that coding for
//     the client, and otherwise decoded as it streams: Content-Encoding
//     and Content-Length are removed and the ETag weakened. Stacked or
//     unknown codings, no-transform, 204, 304, 206 and Content-Range
//     pass through as they are.
//  4. An Eligible response whose client negotiates a coding (Choose) is
//     encoded as it streams with a pooled encoder at StreamLevel:
//     Content-Encoding is set, Content-Length removed, the ETag
//     suffixed (ETag) and Accept-Encoding added to Vary. Flush flushes
//     the encoder, then the connection, so server-sent events arrive
//     one by one.
//  5. An Eligible response whose client gets identity passes through
//     with Accept-Encoding added to Vary, since another client's
//     response would differ.
//
// In cases 3 and 4 Accept-Ranges and the content digests
// (Content-MD5, Content-Digest, Repr-Digest, Digest) are dropped, as
// they describe bytes that are no longer sent. A HEAD response gets the
// headers GET would, and no body.
//
// Validators the gateway made are mapped back to the origin's, which
// only knows "x":
//
//   - For GET and HEAD, a strong "x-<coding>" in If-None-Match is passed
//     down with "x" added beside it only when <coding> is the one this
//     response will be encoded with (Choose), so the origin answers 304
//     to a client that holds the variant it would be sent again, and
//     not to one that would now get another coding or identity.
//   - For an unsafe method, a strong "x-<coding>" in If-Match, for an offered
//     coding, gets "x" added beside it: every encoded form of "x" stands
//     for the same state of the resource, so a client that fetched one
//     may update it (a PUT with the ETag it was sent succeeds). A GET
//     or HEAD keeps its If-Match as sent: it guards a range of a stored
//     form, which the origin's identity bytes must not complete.
//   - If-Range is left alone: its range would be cut from the origin's
//     identity bytes, which a client holding part of an encoded form
//     must not get spliced onto it; it gets the whole response instead.
//
// The encoder or decoder is released when the handler returns, also
// when it panics; a response cut short by a panic is not finished off
// as if it were complete. A body that fails to decode aborts the
// response (panic(http.ErrAbortHandler)) after the handler returns.
//
// The ResponseWriter passed down implements http.Flusher, Hijacker,
// Skipper and Unwrap, so http.ResponseController reaches the
// connection's deadlines and full-duplex setting.
func (c *Compressor) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		origINM := r.Header["If-None-Match"]
		var inm, im string
		if len(origINM) > 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			inm, _ = c.expandINM(origINM, c.Choose(r))
		}
		// Only for a request that changes the resource: on a GET or HEAD,
		// If-Match guards a range of a stored representation (RFC 9110
		// section 13.1.1), and a match against the origin's tag would
		// fetch identity bytes to splice onto an encoded form.
		if !httpmethod.Safe(r.Method) {
			if v := r.Header["If-Match"]; len(v) > 0 {
				im, _ = c.expandIfMatch(v)
			}
		}
		if inm != "" || im != "" {
			r = r.WithContext(r.Context())
			r.Header = r.Header.Clone()
			if inm != "" {
				r.Header["If-None-Match"] = []string{inm}
			}
			if im != "" {
				r.Header["If-Match"] = []string{im}
			}
		}
		w := writerPool.Get().(*writer)
		*w = writer{c: c, rw: rw, req: r, inm: origINM}
		completed := false
		defer func() {
			abort := w.finish(completed)
			*w = writer{}
			writerPool.Put(w)
			if abort {
				// The upstream's body is corrupt. Headers and part of
				// the body are out; ending normally would present the
				// truncated body as complete.
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(w, r)
		completed = true
	})
}

var writerPool = sync.Pool{New: func() any { return new(writer) }}

type mode uint8

const (
	modeUndecided mode = iota
	modePass           // untouched
	modeNoBody         // headers transformed, body dropped (HEAD)
	modeEncode
	modeDecode
)

// writer is the ResponseWriter the middleware passes down.
type writer struct {
	c   *Compressor
	rw  http.ResponseWriter
	req *http.Request
	inm []string // the request's If-None-Match as the client sent it

	mode     mode
	wrote    bool // the final (non-1xx) header was written
	skip     bool
	hijacked bool
	coding   string

	enc Encoder
	out countWriter // the encoder's sink
	in  uint64      // bytes the handler wrote

	dec *decodeState
}

// countWriter counts what goes to the client.
type countWriter struct {
	w io.Writer
	n uint64
}

func (cw *countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += uint64(n)
	return n, err
}

func (w *writer) Header() http.Header { return w.rw.Header() }

// SkipCompression makes the response pass through as written. It has
// no effect once the header is written.
func (w *writer) SkipCompression() {
	if !w.wrote {
		w.skip = true
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *writer) Unwrap() http.ResponseWriter { return w.rw }

func (w *writer) WriteHeader(code int) {
	if w.wrote || w.hijacked {
		// Superfluous: let net/http log it as it would.
		w.rw.WriteHeader(code)
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): the real response follows.
		w.rw.WriteHeader(code)
		return
	}
	w.wrote = true
	w.decide(code)
	w.rw.WriteHeader(code)
}

// decide picks the mode for a final status and rewrites the header.
func (w *writer) decide(code int) {
	w.mode = modePass
	h := w.rw.Header()
	if _, ok := h[passThroughKey]; ok {
		delete(h, passThroughKey)
		w.skip = true
	}
	switch {
	case w.skip || code == http.StatusSwitchingProtocols || w.req.Method == http.MethodConnect || hasNoTransform(w.req.Header):
		// A request's no-transform asks intermediaries not to change
		// the content (RFC 9111 section 5.2.1.6).
		return
	case code == http.StatusNotModified:
		addVary(h)
		w.fixNotModifiedETag(h)
		return
	}
	head := w.req.Method == http.MethodHead

	upstream, ok := contentCoding(h)
	if !ok {
		return
	}
	if upstream != "" {
		if !hasBody(code) || code == http.StatusPartialContent || len(h["Content-Range"]) > 0 || hasNoTransform(h) {
			return
		}
		// Another client would get the other form.
		addVary(h)
		if got, _ := Negotiate(w.req.Header["Accept-Encoding"], []string{upstream}); got == upstream {
			return
		}
		delete(h, "Content-Encoding")
		transformed(h)
		if et := h["Etag"]; len(et) > 0 {
			h.Set("Etag", weakETag(et[0]))
		}
		w.coding = upstream
		w.mode = modeDecode
		if head {
			w.mode = modeNoBody
		}
		return
	}

	if !w.c.Eligible(code, h, w.req.Method) {
		return
	}
	coding := w.c.Choose(w.req)
	SetEncoding(h, coding)
	if coding == "" {
		return
	}
	w.coding = coding
	w.mode = modeEncode
	if head {
		w.mode = modeNoBody
	}
}

func hasBody(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusResetContent && code != http.StatusNotModified
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.wrote && !w.hijacked {
		h := w.rw.Header()
		if _, typed := h["Content-Type"]; !typed && len(p) > 0 && len(h["Content-Encoding"]) == 0 {
			// What net/http would do on this first write, done here so
			// that the type is known when deciding.
			h.Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	switch w.mode {
	case modeNoBody:
		return len(p), nil
	case modeEncode:
		if w.enc == nil {
			if err := w.startEncoder(); err != nil {
				return 0, err
			}
		}
		n, err := w.enc.Write(p)
		w.in += uint64(n)
		return n, err
	case modeDecode:
		return w.decode(p)
	}
	return w.rw.Write(p)
}

func (w *writer) startEncoder() error {
	w.out.w = w.rw
	enc, err := w.c.enc.Get(w.coding, w.c.stream, &w.out)
	if err != nil {
		return err
	}
	w.enc = enc
	return nil
}

// Flush sends what was written so far to the client.
func (w *writer) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController, with the error.
func (w *writer) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		if err := w.enc.Flush(); err != nil {
			return err
		}
	}
	// While decoding, the decoder has written out all it could from the
	// input so far: it runs only inside Write (see decodeState).
	return http.NewResponseController(w.rw).Flush()
}

// Hijack hands over the connection (HTTP/1.x upgrades); the middleware
// then stays out of the way.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// finish ends the response when the handler returns. completed is false
// when it panicked (or called runtime.Goexit): the body is then
// abandoned rather than finished, so the client cannot mistake the
// truncated response for a whole one. It reports whether the response
// must be aborted because its body failed to decode.
func (w *writer) finish(completed bool) (abort bool) {
	if w.hijacked {
		completed = false
	}
	if completed && !w.wrote {
		// net/http's implicit 200. Its body is known to be empty, which
		// is worth no coding; the header is still rewritten as for any
		// response (an upstream's empty "gzip" body is no longer gzip).
		// HEAD gets the headers GET would, and GET would have a body.
		h := w.rw.Header()
		if _, ok := h["Content-Length"]; !ok && w.req.Method != http.MethodHead {
			h.Set("Content-Length", "0")
		}
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	switch w.mode {
	case modeEncode:
		if completed && w.enc == nil {
			// Nothing was written, yet Content-Encoding went out: send
			// an empty stream in that coding.
			if w.startEncoder() != nil {
				return false
			}
		}
		if w.enc == nil {
			return false
		}
		if completed {
			_ = w.enc.Close()
		}
		c.enc.Put(w.enc)
		w.enc = nil
		c.stats[codingIdx(w.coding)].add(w.in, w.out.n)
	case modeDecode:
		d := w.dec
		if d == nil {
			// Nothing was written: the body is empty, also decoded.
			return false
		}
		w.dec = nil
		if completed {
			close(d.in)
		} else {
			close(d.abort)
		}
		<-d.done
		c.stats[statDecoded].add(w.in, d.out)
		return completed && d.decodeErr != nil
	}
	return false
}

// fixNotModifiedETag puts the coding suffix back on a 304's validator
// when the client's If-None-Match named the variant of the coding it
// negotiated: expandINM added the bare validator, which is what the
// origin matched.
func (w *writer) fixNotModifiedETag(h http.Header) {
	et := h["Etag"]
	if len(et) == 0 || !isStrongETag(et[0]) || len(w.inm) == 0 {
		return
	}
	if chosen := w.c.Choose(w.req); chosen != "" && inmHas(w.inm, ETag(et[0], chosen)) {
		h.Set("Etag", ETag(et[0], chosen))
	}
}

// expandINM returns If-None-Match with the bare form "x" added after
// every strong "x-<chosen>", where chosen is the coding the response
// will be sent with, or ok=false when there is nothing to add (also
// when chosen is "", identity). A tag of another coding is not mapped:
// it names bytes this client would not be sent, so it must not match.
func (c *Compressor) expandINM(values []string, chosen string) (string, bool) {
	if chosen == "" || chosen == Identity {
		return "", false
	}
	return expandTags(values, []string{chosen})
}

// expandIfMatch returns If-Match with the bare form "x" added after
// every strong "x-<coding>" for an offered coding, or ok=false when
// there is nothing to add.
func (c *Compressor) expandIfMatch(values []string) (string, bool) {
	return expandTags(values, c.codings)
}

// expandTags returns the entity-tag list values with the bare form "x"
// added after every strong "x-<coding>" for one of codings, or ok=false
// when there is nothing to add.
func expandTags(values, codings []string) (string, bool) {
	var add []string
	for _, v := range values {
		for tag := range entityTags(v) {
			if !isStrongETag(tag) {
				continue
			}
			for _, coding := range codings {
				if base, ok := strings.CutSuffix(tag[:len(tag)-1], "-"+coding); ok && len(base) > 1 {
					base += `"`
					if !inmHas(values, base) && !slices.Contains(add, base) {
						add = append(add, base)
					}
				}
			}
		}
	}
	if len(add) == 0 {
		return "", false
	}
	return strings.Join(values, ", ") + ", " + strings.Join(add, ", "), true
}

// inmHas reports whether the lines of an entity-tag list (If-None-Match,
// If-Match) hold tag exactly.
func inmHas(values []string, tag string) bool {
	for _, v := range values {
		for t := range entityTags(v) {
			if t == tag {
				return true
			}
		}
	}
	return false
}

// entityTags yields the entity-tags of a list (RFC 9110 section 8.8.3),
// W/ included, skipping "*" and stopping at anything malformed. Commas
// may appear inside the quotes, so the list cannot just be split.
func entityTags(s string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		i := 0
		for {
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
				i++
			}
			if i == len(s) {
				return
			}
			start := i
			if strings.HasPrefix(s[i:], "W/") {
				i += 2
			}
			if i == len(s) || s[i] != '"' {
				if s[i] == '*' {
					i++
					continue
				}
				return
			}
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return
			}
			i += end + 2
			if !yield(s[start:i]) {
				return
			}
		}
	}
}

// Decoding. The decoders pull from an io.Reader while the body arrives
// pushed, in Writes, so a goroutine runs the decoder over a reader fed
// by Write. The hand-off is synchronous: Write gives the goroutine its
// bytes and waits until the decoder asks for more, by which time the
// goroutine has written out everything it could decode. The goroutine
// therefore only touches the ResponseWriter while the handler is inside
// Write, never concurrently with a Flush or Header call, and Flush needs
// no extra step. finish ends the goroutine (EOF, or an abort when the
// handler panicked) and waits for it, so none outlives the request.

// decodeState is the goroutine's side; its fields other than the
// channels are owned by the goroutine until done is closed.
type decodeState struct {
	in       chan []byte   // body bytes from Write; closed at the end
	consumed chan struct{} // the last chunk is used up
	abort    chan struct{} // closed when the handler panicked
	done     chan struct{} // closed when the goroutine exits

	cur     []byte
	pending bool // cur came from in and consumed is owed

	out       uint64
	err       error // why the goroutine stopped, nil at a clean EOF
	decodeErr error // err, when it came from the decoder
}

var (
	errAborted  = errors.New("compress: handler ended without finishing the body")
	errTrailing = errors.New("compress: data after the end of the encoded body")
)

// decodeGoroutines counts running decoding goroutines, for tests.
var decodeGoroutines atomic.Int64

// Read feeds the decoder; it runs in the goroutine.
func (d *decodeState) Read(p []byte) (int, error) {
	for len(d.cur) == 0 {
		if d.pending {
			d.pending = false
			d.consumed <- struct{}{}
		}
		select {
		case b, ok := <-d.in:
			if !ok {
				return 0, io.EOF
			}
			d.cur, d.pending = b, true
		case <-d.abort:
			return 0, errAborted
		}
	}
	n := copy(p, d.cur)
	d.cur = d.cur[n:]
	return n, nil
}

var decodeBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (w *writer) decode(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	d := w.dec
	if d == nil {
		d = &decodeState{
			in:       make(chan []byte),
			consumed: make(chan struct{}, 1),
			abort:    make(chan struct{}),
			done:     make(chan struct{}),
		}
		dec, err := NewDecoder(w.coding, d)
		if err != nil {
			return 0, err
		}
		w.dec = d
		decodeGoroutines.Add(1)
		go d.run(dec, w.rw)
	}
	select {
	case d.in <- p:
	case <-d.done:
		return 0, d.stopErr()
	}
	select {
	case <-d.consumed:
		w.in += uint64(len(p))
		return len(p), nil
	case <-d.done:
		return 0, d.stopErr()
	}
}

// stopErr is the error for a Write after the goroutine ended.
func (d *decodeState) stopErr() error {
	if d.err != nil {
		return d.err
	}
	return errTrailing
}

func (d *decodeState) run(dec io.ReadCloser, dst io.Writer) {
	defer func() {
		dec.Close()
		// Before done: once finish has seen done, the count is right.
		decodeGoroutines.Add(-1)
		close(d.done)
	}()
	bp := decodeBufs.Get().(*[]byte)
	defer decodeBufs.Put(bp)
	buf := *bp
	for {
		n, err := dec.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			d.out += uint64(m)
			if werr != nil {
				d.err = werr
				return
			}
		}
		switch {
		case err == io.EOF:
			if len(d.cur) > 0 {
				d.err, d.decodeErr = errTrailing, errTrailing
			}
			return
		case errors.Is(err, errAborted):
			d.err = err
			return
		case err != nil:
			d.err, d.decodeErr = err, err
			return
		}
	}
}
