package cache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"gateway/compress"
)

// Encoder is what the cache needs from the route's compression stage: the
// same decisions the streaming compressor makes, so that a hit and a miss
// are encoded alike, and the encoder for objects kept in the cache.
type Encoder interface {
	// Eligible reports whether a response may be compressed.
	Eligible(status int, h http.Header, method string) bool
	// Choose negotiates r's Accept-Encoding; "" means identity.
	Choose(r *http.Request) string
	// Encode appends src, encoded with coding, to dst.
	Encode(dst []byte, coding string, src []byte) ([]byte, error)
	// ETag is the validator of the body encoded with coding.
	ETag(etag, coding string) string
	// PassThrough marks a response header so that the route's
	// compression stage passes the response on as written: the cache's
	// bytes are final.
	PassThrough(h http.Header)
}

// The codings an entry may keep an encoded form of.
var formCodings = [...]string{"br", "zstd", "gzip"}

const numForms = len(formCodings)

func formIndex(coding string) int {
	for i, c := range formCodings {
		if c == coding {
			return i
		}
	}
	return -1
}

// form is one encoded form of an entry, made at most once: the first
// request that needs it encodes while any others wait for it, and every
// later hit serves it from memory.
type form struct {
	once sync.Once
	done atomic.Pointer[encoded]
}

// encoded is an encoded body with the header that goes with it, built
// once so that serving it allocates nothing and writes each field once.
type encoded struct {
	body []byte
	// fields is the stored header as this form is sent: without
	// Accept-Ranges and the digests, ending with over.
	fields []field
	// over are the fields the form sets rather than copies (Vary,
	// Content-Encoding, Content-Length, and ETag when the entry has
	// one), the tail of fields: a route that strips targeted fields sets
	// them again after stripping, as they are the form's own.
	over []field
}

// etag is the form's validator, "" when the entry has none.
func (f *encoded) etag() string {
	for _, fl := range f.over {
		if fl.name == "Etag" {
			return fl.values[0]
		}
	}
	return ""
}

// formFields is e's header as its form encoded with coding into n bytes
// is sent, with the form's validator etag (nil when e has none).
func formFields(e *Entry, coding string, n int, etag []string) (fields, over []field) {
	over = []field{
		{"Vary", e.varyAE},
		{"Content-Encoding", []string{coding}},
		{"Content-Length", []string{strconv.Itoa(n)}},
	}
	if etag != nil {
		over = append(over, field{"Etag", etag})
	}
	fields = headerFields(e.Header, func(name string) bool {
		if name == "Accept-Ranges" || e.digests && slices.Contains(digestFields[:], name) {
			return true
		}
		for _, f := range over {
			if f.name == name {
				return true
			}
		}
		return false
	})
	fields = append(fields, over...)
	return fields, fields[len(fields)-len(over):]
}

// digestFields describe the stored bytes, so an encoded form is served
// without them.
var digestFields = [...]string{"Content-Md5", "Content-Digest", "Repr-Digest", "Digest"}

// compressMode is what the route's compressor (nil: none) decides for a
// response to be stored: whether it may be encoded when served.
func compressMode(status int, h http.Header, enc Encoder) CompressMode {
	switch {
	case enc == nil:
		return CompressOff
	case !encodable(h) || !enc.Eligible(status, h, http.MethodGet):
		return CompressAsStored
	}
	return CompressEncode
}

// encodable reports whether a body with header h may be encoded by the
// gateway: the origin did not encode it already.
func encodable(h http.Header) bool {
	coding, ok := contentCoding(h)
	return coding == "" && ok
}

// prepareEncoding records, from e.Compress and the header, whether e may
// be served encoded and the Vary its responses carry: Accept-Encoding
// joins the stored Vary, because the encoding sent depends on it even
// though the stored body does not.
//
// A body the origin sent encoded is not encoded again, but the route's
// compressor decodes it for a client that does not accept its coding, so
// its responses vary on Accept-Encoding too. The compressor adds that to
// the 200 it sees; the entry carries it itself so that a 206 cut from the
// entry, which the compressor passes on untouched, says the same.
func prepareEncoding(e *Entry) {
	if e.Compress == CompressOff {
		return
	}
	if coding, ok := contentCoding(e.Header); coding != "" || !ok {
		e.coding = coding
		if coding != "" && bodyAllowed(e.Status) && !e.CC.NoTransform {
			e.varyAE = varyAE(e.Header)
		}
		return
	}
	if e.Compress != CompressEncode {
		return
	}
	e.compressible = true
	for _, k := range digestFields {
		if _, ok := e.Header[k]; ok {
			e.digests = true
		}
	}
	e.varyAE = varyAE(e.Header)
}

// varyAE is the Vary of h with Accept-Encoding added unless it is there.
func varyAE(h http.Header) []string {
	vary := h["Vary"]
	if fields, _ := VaryFields(h); slices.Contains(fields, "Accept-Encoding") {
		return vary
	}
	if len(vary) == 0 {
		return []string{"Accept-Encoding"}
	}
	return []string{strings.Join(vary, ", ") + ", Accept-Encoding"}
}

// contentCoding reads Content-Encoding as the route's compressor does:
// "" when the body has no coding (absent, empty or identity), the
// canonical name when it is exactly one of gzip (or x-gzip), br or zstd,
// which the compressor can decode, and ok=false for anything else (an
// unknown coding or several stacked), which it passes on as it is.
func contentCoding(h http.Header) (coding string, ok bool) {
	for _, v := range h["Content-Encoding"] {
		for len(v) > 0 {
			var tok string
			tok, v = cutByte(v, ',')
			tok = trimOWS(tok)
			if tok == "" || equalFoldASCII(tok, "identity") {
				continue
			}
			c := ""
			switch {
			case equalFoldASCII(tok, "gzip"), equalFoldASCII(tok, "x-gzip"):
				c = "gzip"
			case equalFoldASCII(tok, "br"):
				c = "br"
			case equalFoldASCII(tok, "zstd"):
				c = "zstd"
			}
			if c == "" || coding != "" {
				return "", false
			}
			coding = c
		}
	}
	return coding, true
}

// acceptsCoding reports whether the route's compressor sends a body
// stored in coding to r as it is, rather than decoding it: the client's
// Accept-Encoding prefers it to identity.
func acceptsCoding(r *http.Request, coding string) bool {
	got, _ := compress.Negotiate(r.Header["Accept-Encoding"], []string{coding})
	return got == coding
}

// encodedForm returns e's body in coding, encoding it on first use, and
// whether the form is new (so the store must recount e's cost). nil means
// the coding is not available: serve identity.
func (e *Entry) encodedForm(coding string, enc Encoder) (f *encoded, fresh bool) {
	i := formIndex(coding)
	if i < 0 {
		return nil, false
	}
	fm := &e.forms[i]
	if f := fm.done.Load(); f != nil {
		return f, false
	}
	fm.once.Do(func() {
		body, err := enc.Encode(nil, coding, e.Body)
		if err != nil {
			return
		}
		f := &encoded{body: tightBody(body)}
		var etag []string
		if e.ETag != "" {
			etag = []string{enc.ETag(e.ETag, coding)}
		}
		f.fields, f.over = formFields(e, coding, len(body), etag)
		fm.done.Store(f)
		fresh = true
	})
	return fm.done.Load(), fresh
}
