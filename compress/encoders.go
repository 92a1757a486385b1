package compress

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Level is a compression effort, mapped per coding. The gateway uses
// [Fastest] on the streaming path, where compression latency is paid by
// every response, and [Best] for cached objects, which are compressed once
// and served many times, so extra CPU there buys bandwidth on every hit.
//
// Mapping:
//
//	Level    gzip (klauspost)   brotli (quality)   zstd (klauspost)
//	Fastest  1                  1                  SpeedFastest (≈ zstd -1)
//	Default  6                  5                  SpeedDefault (≈ zstd -3)
//	Best     9                  9                  SpeedBestCompression (≈ zstd -11)
//
// Choices for Best, measured on 64 KiB of API-style JSON (BenchmarkEncode,
// one core of an AMD EPYC):
//
//   - brotli 9 rather than 11: quality 11 took 171 ms per 64 KiB (0.4
//     MB/s) for a 3% smaller result than quality 9 (0.9 ms, 71 MB/s). At
//     11 a cache fill of a large object would stall the request that
//     triggered it for seconds.
//   - zstd SpeedBestCompression: despite its name it still ran at 140
//     MB/s, about 3.5 times the cost of SpeedBetterCompression, for a 20%
//     smaller result; for an object compressed once and served many
//     times that is worth it.
//   - gzip 9: about 6 times the cost of level 6 for under 1% gain, but
//     still about 95 MB/s; gzip is what clients without br or zstd get,
//     and the cost is paid once per cached object.
//
// The zero Level is none of these: in [Options] it stands for the field's
// default, and [Encoders] rejects it like any other level out of range.
type Level int

const (
	Fastest Level = iota + 1
	Default
	Best
	numLevels
)

// String returns the level's name, for logs and benchmark names.
func (l Level) String() string {
	switch l {
	case Fastest:
		return "fastest"
	case Default:
		return "default"
	case Best:
		return "best"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Per-coding parameters, indexed by Level; index 0 (no level) is unused.
var (
	gzipLevels   = [numLevels]int{0, gzip.BestSpeed, 6, gzip.BestCompression}
	brotliLevels = [numLevels]int{0, 1, 5, 9}
	zstdLevels   = [numLevels]zstd.EncoderLevel{0, zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBestCompression}
)

// streamingZstdWindow bounds the history each pooled streaming zstd
// encoder keeps. The library default (4-8 MiB, and twice that in buffers
// without WithLowerEncoderMem) would make every in-flight streamed
// response pin several MiB; 2 MiB is what reference zstd uses at level 3
// (windowLog 21) and is well under the 8 MiB limit RFC 9659 sets for HTTP.
const streamingZstdWindow = 2 << 20

// maxDecoderWindow is the largest zstd window NewDecoder accepts. RFC 9659
// section 3 limits zstd Content-Encoding windows to 8 MiB precisely so
// that HTTP recipients can bound decoder memory; a larger window from an
// upstream is non-conforming and would let it make the proxy allocate
// without limit.
const maxDecoderWindow = 8 << 20

// ErrUnknownCoding is returned (wrapped) for a coding other than gzip, br
// or zstd, or a level outside Fastest..Best.
var ErrUnknownCoding = errors.New("compress: unknown coding")

// Encoder is a pooled compressor writing one content coding. Obtain it
// from [Encoders.Get], Close it to finish the stream, then hand it back
// with [Encoders.Put]; it must not be used after Put.
type Encoder interface {
	io.WriteCloser
	// Flush writes everything written so far in a form the client can
	// decode immediately (e.g. for server-sent events), at some cost in
	// compression ratio.
	Flush() error
	// Reset discards the current stream and starts a new one writing to w.
	Reset(w io.Writer)
	// Coding returns the Content-Encoding token: gzip, br or zstd.
	Coding() string
}

// codingIdx maps a canonical coding name to a pool index. Names are
// matched exactly: callers pass the constants or the output of Negotiate,
// which is always canonical.
func codingIdx(coding string) int {
	switch coding {
	case Gzip:
		return 0
	case Brotli:
		return 1
	case Zstd:
		return 2
	}
	return -1
}

const numCodings = 3

// Encoders hands out pooled encoders, one pool per (coding, level): an
// encoder's level is fixed at construction (brotli and zstd cannot change
// it on Reset), so encoders of different levels cannot share a pool.
// The zero value is not usable; call [NewEncoders]. An Encoders is safe for
// concurrent use.
type Encoders struct {
	streams [numCodings][numLevels]sync.Pool
	// blocks holds *zstd.Encoder used only through EncodeAll for Encode.
	// They are separate from the streaming pool because EncodeAll uses an
	// encoder state distinct from the streaming one; sharing would make
	// every pooled encoder carry both, and cached objects want the full
	// window rather than the reduced streaming one.
	blocks [numLevels]sync.Pool
}

// NewEncoders returns an empty set of pools; encoders are created on
// demand and reclaimed by the garbage collector when idle, as with any
// sync.Pool.
func NewEncoders() *Encoders {
	e := &Encoders{}
	for l := Fastest; l < numLevels; l++ {
		for c := range numCodings {
			p := &e.streams[c][l]
			p.New = func() any { return newStreamEncoder(c, l, p) }
		}
		e.blocks[l].New = func() any {
			enc, err := zstd.NewWriter(nil,
				zstd.WithEncoderLevel(zstdLevels[l]),
				zstd.WithEncoderConcurrency(1),
				// See the streaming encoder below.
				zstd.WithZeroFrames(true),
			)
			if err != nil {
				// Only reachable with invalid static options.
				panic(err)
			}
			return enc
		}
	}
	return e
}

func newStreamEncoder(c int, l Level, p *sync.Pool) Encoder {
	switch c {
	case 0:
		w, err := gzip.NewWriterLevel(io.Discard, gzipLevels[l])
		if err != nil {
			panic(err) // levels are static and valid
		}
		return &gzipEncoder{Writer: w, pool: p}
	case 1:
		b := &brotliEncoder{Writer: brotli.NewWriterLevel(io.Discard, brotliLevels[l]), pool: p}
		if brotliLevels[l] <= 1 {
			b.buf = make([]byte, 0, brotliFastBuffer)
		}
		return b
	default:
		w, err := zstd.NewWriter(io.Discard,
			zstd.WithEncoderLevel(zstdLevels[l]),
			// Concurrency 1 makes the encoder compress synchronously in
			// the calling goroutine: a proxy already runs one goroutine per
			// response, and background goroutines per encoder would both
			// allocate and outlive the request.
			zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true),
			zstd.WithWindowSize(streamingZstdWindow),
			// An empty body still yields a complete frame: the library
			// default of emitting nothing would send a zero-length "zstd"
			// body, which strict decoders reject as truncated, whereas
			// gzip and brotli always emit a header.
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			panic(err)
		}
		return &zstdEncoder{Encoder: w, pool: p}
	}
}

func checkArgs(coding string, level Level) (int, error) {
	c := codingIdx(coding)
	if c < 0 {
		return 0, fmt.Errorf("%w %q", ErrUnknownCoding, coding)
	}
	if level < Fastest || level >= numLevels {
		return 0, fmt.Errorf("%w level %v", ErrUnknownCoding, level)
	}
	return c, nil
}

// Get returns a pooled encoder for coding at level, writing to w. It
// returns an error wrapping ErrUnknownCoding for codings it does not
// produce (including identity: the caller should not wrap the body).
func (e *Encoders) Get(coding string, level Level, w io.Writer) (Encoder, error) {
	c, err := checkArgs(coding, level)
	if err != nil {
		return nil, err
	}
	enc := e.streams[c][level].Get().(Encoder)
	enc.Reset(w)
	return enc, nil
}

// Put returns enc to its pool. Call it after Close; an unclosed stream is
// discarded. Put resets the encoder to io.Discard first so that a pooled
// encoder keeps no reference to the response writer (and through it the
// connection) it last wrote to. Encoders not obtained from Get are ignored.
func (e *Encoders) Put(enc Encoder) {
	if p, ok := enc.(pooled); ok {
		p.release()
	}
}

// pooled is implemented by this package's encoders; each knows its pool,
// so Put needs no lookup.
type pooled interface{ release() }

// Encode compresses all of src and appends the result to dst, for cached
// objects that are compressed once. It does not allocate when dst has
// enough capacity; pass a reused buffer to benefit. An empty src yields a
// valid empty stream for every coding.
func (e *Encoders) Encode(dst []byte, coding string, level Level, src []byte) ([]byte, error) {
	c, err := checkArgs(coding, level)
	if err != nil {
		return dst, err
	}
	if c == 2 {
		// EncodeAll records the content size in the frame header and,
		// for inputs up to the window, emits a single-segment frame that
		// decoders can decompress without a separate window buffer.
		enc := e.blocks[level].Get().(*zstd.Encoder)
		dst = enc.EncodeAll(src, dst)
		e.blocks[level].Put(enc)
		return dst, nil
	}
	enc := e.streams[c][level].Get().(Encoder)
	sink := sinkOf(enc)
	sink.b = dst
	enc.Reset(sink)
	_, err = enc.Write(src)
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	dst = sink.b
	sink.b = nil // the caller owns dst now; the pool must not retain it
	e.Put(enc)
	return dst, err
}

// appendWriter is an io.Writer appending to a byte slice. Each encoder
// embeds one so that Encode can target the caller's dst without
// allocating a bytes.Buffer or boxing a new writer per call.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

func sinkOf(enc Encoder) *appendWriter {
	switch enc := enc.(type) {
	case *gzipEncoder:
		return &enc.sink
	case *brotliEncoder:
		return &enc.sink
	}
	panic("compress: no sink for " + enc.Coding())
}

type gzipEncoder struct {
	*gzip.Writer
	pool *sync.Pool
	sink appendWriter
}

func (g *gzipEncoder) Coding() string { return Gzip }
func (g *gzipEncoder) release() {
	g.Writer.Reset(io.Discard)
	g.pool.Put(g)
}

// brotliFastBuffer is how much input a brotli encoder at quality 0 or 1
// collects before compressing. At those qualities the library
// compresses each Write as a fragment of its own, with no history from
// earlier ones (the one-pass fast path of the reference encoder, which
// expects large inputs), so a proxy copying a body in small reads
// would send it barely compressed or even grown: 30 KB of JSON written
// 100 bytes at a time came out at 30.9 KB, against 3.6 KB in one
// write. The fragment size matters beyond that too, because the hash
// table grows with it: 512 KiB of JSON compressed 8.9:1 in 32 KiB
// fragments, 13.5:1 in 64 KiB ones and 13.8:1 in 128 KiB ones.
// A Flush compresses what is collected, so streams still flow.
const brotliFastBuffer = 64 << 10

type brotliEncoder struct {
	*brotli.Writer
	pool *sync.Pool
	sink appendWriter
	// buf collects input at qualities 0 and 1 (nil at others); see
	// brotliFastBuffer.
	buf []byte
}

func (b *brotliEncoder) Write(p []byte) (int, error) {
	if b.buf == nil {
		return b.Writer.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		if len(b.buf) == 0 && len(p) >= cap(b.buf) {
			// Large enough as it is: no copy.
			if _, err := b.Writer.Write(p); err != nil {
				return n - len(p), err
			}
			return n, nil
		}
		k := copy(b.buf[len(b.buf):cap(b.buf)], p)
		b.buf = b.buf[:len(b.buf)+k]
		p = p[k:]
		if len(b.buf) == cap(b.buf) {
			if err := b.drain(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// drain compresses the collected input.
func (b *brotliEncoder) drain() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Writer.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *brotliEncoder) Flush() error {
	if err := b.drain(); err != nil {
		return err
	}
	return b.Writer.Flush()
}

func (b *brotliEncoder) Close() error {
	if err := b.drain(); err != nil {
		return err
	}
	return b.Writer.Close()
}

func (b *brotliEncoder) Reset(w io.Writer) {
	if b.buf != nil {
		b.buf = b.buf[:0]
	}
	b.Writer.Reset(w)
}

func (b *brotliEncoder) Coding() string { return Brotli }
func (b *brotliEncoder) release() {
	b.Reset(io.Discard)
	b.pool.Put(b)
}

type zstdEncoder struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (z *zstdEncoder) Coding() string { return Zstd }
func (z *zstdEncoder) release() {
	z.Encoder.Reset(io.Discard)
	z.pool.Put(z)
}

// Decoder pools: one per coding. Decoders hold large window and table
// buffers (brotli up to 16 MiB ring buffer, zstd its window), which are
// worth reusing across upstream responses.
var (
	gzipReaders   sync.Pool
	brotliReaders sync.Pool
	zstdReaders   sync.Pool
)

// NewDecoder returns a reader decoding coding from r, for upstream bodies
// in a coding the client does not accept. Nothing is read from r until the
// first Read, so a malformed header surfaces as a Read error. Close
// returns the decoder to a pool; it does not close r.
func NewDecoder(coding string, r io.Reader) (io.ReadCloser, error) {
	var d *decoder
	switch coding {
	case Gzip:
		d, _ = gzipReaders.Get().(*decoder)
		if d == nil {
			d = &decoder{pool: &gzipReaders}
		}
	case Brotli:
		d, _ = brotliReaders.Get().(*decoder)
		if d == nil {
			d = &decoder{pool: &brotliReaders, br: brotli.NewReader(nil)}
		}
	case Zstd:
		d, _ = zstdReaders.Get().(*decoder)
		if d == nil {
			zr, err := zstd.NewReader(nil,
				// Synchronous decoding in the caller's goroutine; no
				// background goroutines to leak or to allocate.
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxDecoderWindow),
			)
			if err != nil {
				return nil, err
			}
			d = &decoder{pool: &zstdReaders, zr: zr}
		}
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCoding, coding)
	}
	d.in.r = r
	// A fresh handle per call: if a caller reads after Close, it hits
	// the closed handle instead of a decoder another request now owns.
	return &decoderHandle{d: d}, nil
}

// srcReader forwards to the current upstream body. The decoders read
// from it rather than from r directly, so that clearing r on Close drops
// the reference to the upstream body even though gzip and zstd offer no
// way to reset to "no input" without reading.
type srcReader struct{ r io.Reader }

func (s *srcReader) Read(p []byte) (int, error) {
	if s.r == nil {
		return 0, io.ErrUnexpectedEOF
	}
	return s.r.Read(p)
}

type decoder struct {
	pool    *sync.Pool
	in      srcReader
	started bool
	gz      *gzip.Reader
	br      *brotli.Reader
	zr      *zstd.Decoder
	rd      io.Reader // the active decoding reader once started
}

// start resets the decoder onto d.in. It is deferred to the first Read
// because gzip reads its header on Reset and zstd its frame header.
func (d *decoder) start() error {
	d.started = true
	switch {
	case d.br != nil:
		if err := d.br.Reset(&d.in); err != nil {
			return err
		}
		d.rd = d.br
	case d.zr != nil:
		if err := d.zr.Reset(&d.in); err != nil {
			return err
		}
		d.rd = d.zr
	default:
		if d.gz == nil {
			gz, err := gzip.NewReader(&d.in)
			if err != nil {
				return err
			}
			d.gz = gz
		} else if err := d.gz.Reset(&d.in); err != nil {
			return err
		}
		d.rd = d.gz
	}
	return nil
}

type decoderHandle struct {
	d   *decoder
	err error
}

var errDecoderClosed = errors.New("compress: read from closed decoder")

func (h *decoderHandle) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	d := h.d
	if d == nil {
		return 0, errDecoderClosed
	}
	if !d.started {
		if err := d.start(); err != nil {
			if err == io.EOF {
				// An empty body is not a valid gzip stream.
				err = io.ErrUnexpectedEOF
			}
			h.err = err
			return 0, err
		}
	}
	n, err := d.rd.Read(p)
	if err != nil {
		h.err = err
	}
	return n, err
}

// Close returns the decoder to its pool. A decoder that failed is
// discarded instead: its internal state may be inconsistent, and a
// failure is rare enough that reallocating costs nothing overall.
func (h *decoderHandle) Close() error {
	d := h.d
	if d == nil {
		return nil
	}
	h.d = nil
	d.in.r = nil
	d.started = false
	d.rd = nil
	if h.err != nil && h.err != io.EOF {
		if d.zr != nil {
			d.zr.Close() // frees its buffers; the decoder is not reused
		}
		return nil
	}
	if d.zr != nil {
		// Drops the decoder's reference to d.in and any pending output.
		_ = d.zr.Reset(nil)
	}
	d.pool.Put(d)
	return nil
}
