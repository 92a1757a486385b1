package compress

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	codings = []string{Gzip, Brotli, Zstd}
	levels  = []Level{Fastest, Default, Best}
)

// jsonBody returns n bytes of repetitive JSON-like text, typical of API
// responses (and therefore compressible).
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"user-%d","email":"user%d@example.com","active":%t,"score":%d,"tags":["a","b","c"]},`,
			i, i, i, i%3 == 0, i*7%1000)
	}
	return b.Bytes()[:n]
}

func randomBody(n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var (
	json64k   = jsonBody(64 << 10)
	random1M  = randomBody(1 << 20)
	testBodys = []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"1byte", []byte{'x'}},
		{"json64k", json64k},
		{"random1M", random1M},
	}
)

// realDecoders decodes enc with every independent decoder available for
// coding, returning one result per decoder, so a bug shared by our
// NewDecoder and the encoder cannot hide.
func realDecoders(t *testing.T, coding string, enc []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	read := func(name string, r io.Reader, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: open: %v", name, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: read: %v", name, err)
		}
		out[name] = b
	}
	switch coding {
	case Gzip:
		kr, err := gzip.NewReader(bytes.NewReader(enc))
		read("klauspost/gzip", kr, err)
		sr, err := stdgzip.NewReader(bytes.NewReader(enc))
		read("compress/gzip", sr, err)
	case Brotli:
		read("brotli", brotli.NewReader(bytes.NewReader(enc)), nil)
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(enc))
		read("zstd", zr, err)
		if zr != nil {
			zr.Close()
		}
		// DecodeAll takes the block path rather than the stream path.
		zd, _ := zstd.NewReader(nil)
		b, err := zd.DecodeAll(enc, nil)
		zd.Close()
		if err != nil {
			t.Fatalf("zstd DecodeAll: %v", err)
		}
		out["zstd.DecodeAll"] = b
	}
	d, err := NewDecoder(coding, bytes.NewReader(enc))
	read("NewDecoder", d, err)
	if err := d.Close(); err != nil {
		t.Fatalf("NewDecoder Close: %v", err)
	}
	return out
}

func checkDecodes(t *testing.T, coding string, enc, want []byte) {
	t.Helper()
	if len(enc) == 0 {
		t.Fatalf("empty encoding: every coding must emit at least a header")
	}
	for name, got := range realDecoders(t, coding, enc) {
		if !bytes.Equal(got, want) {
			t.Errorf("%s: decoded %d bytes, want %d (equal=false)", name, len(got), len(want))
		}
	}
}

func TestRoundTrip(t *testing.T) {
	e := NewEncoders()
	for _, c := range codings {
		for _, l := range levels {
			for _, body := range testBodys {
				t.Run(fmt.Sprintf("%s/%v/%s", c, l, body.name), func(t *testing.T) {
					// Block path: Encode, appending to a non-empty dst to
					// check it really appends.
					prefix := []byte("prefix")
					out, err := e.Encode(append([]byte(nil), prefix...), c, l, body.data)
					if err != nil {
						t.Fatalf("Encode: %v", err)
					}
					if !bytes.HasPrefix(out, prefix) {
						t.Fatalf("Encode did not append to dst")
					}
					checkDecodes(t, c, out[len(prefix):], body.data)

					// Streaming path, in uneven writes.
					var buf bytes.Buffer
					enc, err := e.Get(c, l, &buf)
					if err != nil {
						t.Fatalf("Get: %v", err)
					}
					if enc.Coding() != c {
						t.Fatalf("Coding() = %q, want %q", enc.Coding(), c)
					}
					for p := body.data; len(p) > 0; {
						n := min(len(p), 10007)
						if _, err := enc.Write(p[:n]); err != nil {
							t.Fatalf("Write: %v", err)
						}
						p = p[n:]
					}
					if err := enc.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					e.Put(enc)
					checkDecodes(t, c, buf.Bytes(), body.data)
				})
			}
		}
	}
}

// TestReuse checks that a pooled encoder carries no state from one stream
// into the next, including after a stream abandoned without Close.
func TestReuse(t *testing.T) {
	e := NewEncoders()
	for _, c := range codings {
		for i := range 5 {
			var buf bytes.Buffer
			enc, err := e.Get(c, Default, &buf)
			if err != nil {
				t.Fatal(err)
			}
			body := json64k[i*1000 : i*1000+5000]
			if _, err := enc.Write(body); err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 {
				e.Put(enc) // abandoned mid-stream
				continue
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			e.Put(enc)
			checkDecodes(t, c, buf.Bytes(), body)
		}
	}
}

func TestFlush(t *testing.T) {
	e := NewEncoders()
	parts := [][]byte{json64k[:1000], json64k[1000:1001], random1M[:3000], json64k[5000:40000]}
	for _, c := range codings {
		for _, l := range levels {
			t.Run(fmt.Sprintf("%s/%v", c, l), func(t *testing.T) {
				var buf bytes.Buffer
				enc, err := e.Get(c, l, &buf)
				if err != nil {
					t.Fatal(err)
				}
				var want []byte
				for i, p := range parts {
					if _, err := enc.Write(p); err != nil {
						t.Fatal(err)
					}
					if err := enc.Flush(); err != nil {
						t.Fatalf("Flush: %v", err)
					}
					want = append(want, p...)
					// The stream is unfinished, so decode exactly the
					// prefix: every byte written so far must be there.
					snapshot := bytes.Clone(buf.Bytes())
					for name, r := range prefixReaders(t, c, snapshot) {
						got := make([]byte, len(want))
						if _, err := io.ReadFull(r, got); err != nil {
							t.Fatalf("part %d: %s: %v", i, name, err)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("part %d: %s: prefix mismatch", i, name)
						}
					}
				}
				if err := enc.Close(); err != nil {
					t.Fatal(err)
				}
				e.Put(enc)
				checkDecodes(t, c, buf.Bytes(), want)
			})
		}
	}
}

// prefixReaders returns streaming readers over an unfinished stream.
func prefixReaders(t *testing.T, coding string, b []byte) map[string]io.Reader {
	t.Helper()
	m := map[string]io.Reader{}
	switch coding {
	case Gzip:
		kr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		sr, err := stdgzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		m["klauspost/gzip"], m["compress/gzip"] = kr, sr
	case Brotli:
		m["brotli"] = brotli.NewReader(bytes.NewReader(b))
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		m["zstd"] = zr
	}
	d, err := NewDecoder(coding, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	m["NewDecoder"] = d
	return m
}

// TestFlushPipe checks flushing end to end through a pipe: the decoder
// must deliver the flushed prefix while the encoder is still open, which
// is what a streamed response (server-sent events) relies on.
func TestFlushPipe(t *testing.T) {
	e := NewEncoders()
	for _, c := range codings {
		t.Run(c, func(t *testing.T) {
			pr, pw := io.Pipe()
			enc, err := e.Get(c, Fastest, pw)
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDecoder(c, pr)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			msgs := []string{"data: one\n\n", "data: two\n\n", strings.Repeat("data: three\n\n", 50)}
			done := make(chan error, 1)
			go func() {
				for _, m := range msgs {
					if _, err := io.WriteString(enc, m); err != nil {
						done <- err
						return
					}
					if err := enc.Flush(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for _, m := range msgs {
				got := make([]byte, len(m))
				if _, err := io.ReadFull(d, got); err != nil {
					t.Fatalf("read %q: %v", m, err)
				}
				if string(got) != m {
					t.Fatalf("got %q, want %q", got, m)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			go func() {
				err := enc.Close()
				pw.CloseWithError(err)
			}()
			if rest, err := io.ReadAll(d); err != nil || len(rest) != 0 {
				t.Fatalf("after close: %q, %v", rest, err)
			}
			e.Put(enc)
		})
	}
}

func TestUnknownCoding(t *testing.T) {
	e := NewEncoders()
	for _, c := range []string{"", Identity, "deflate", "compress", "x-gzip", "GZIP", "*"} {
		if enc, err := e.Get(c, Default, io.Discard); err == nil || enc != nil || !errors.Is(err, ErrUnknownCoding) {
			t.Errorf("Get(%q) = %v, %v; want ErrUnknownCoding", c, enc, err)
		}
		dst := []byte("keep")
		if out, err := e.Encode(dst, c, Default, []byte("x")); !errors.Is(err, ErrUnknownCoding) || string(out) != "keep" {
			t.Errorf("Encode(%q) = %q, %v; want dst unchanged, ErrUnknownCoding", c, out, err)
		}
		if d, err := NewDecoder(c, strings.NewReader("x")); !errors.Is(err, ErrUnknownCoding) || d != nil {
			t.Errorf("NewDecoder(%q) = %v, %v; want ErrUnknownCoding", c, d, err)
		}
	}
	for _, l := range []Level{-1, 0, Best + 1, 100} {
		if _, err := e.Get(Gzip, l, io.Discard); !errors.Is(err, ErrUnknownCoding) {
			t.Errorf("Get(gzip, %v) err = %v; want ErrUnknownCoding", l, err)
		}
		if _, err := e.Encode(nil, Zstd, l, nil); !errors.Is(err, ErrUnknownCoding) {
			t.Errorf("Encode(zstd, %v) err = %v; want ErrUnknownCoding", l, err)
		}
	}
	// Foreign encoders are ignored by Put rather than corrupting a pool.
	e.Put(nil)
}

func TestDecoderErrors(t *testing.T) {
	for _, c := range codings {
		t.Run(c, func(t *testing.T) {
			for _, in := range [][]byte{nil, []byte("definitely not compressed data, at all")} {
				d, err := NewDecoder(c, bytes.NewReader(in))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(d)
				if c == Zstd && len(in) == 0 && err == nil && len(got) == 0 {
					// zstd: an empty input is an empty sequence of frames.
				} else if err == nil {
					t.Errorf("input %q: decoded %q without error", in, got)
				}
				d.Close()
			}
			// Truncated stream.
			enc, _ := NewEncoders().Encode(nil, c, Default, json64k)
			d, _ := NewDecoder(c, bytes.NewReader(enc[:len(enc)/2]))
			if _, err := io.ReadAll(d); err == nil {
				t.Errorf("truncated stream decoded without error")
			}
			d.Close()
			// The pool still hands out working decoders afterwards.
			checkDecodes(t, c, enc, json64k)

			// Read after Close fails instead of touching a pooled decoder.
			d, _ = NewDecoder(c, bytes.NewReader(enc))
			d.Close()
			if _, err := d.Read(make([]byte, 10)); err == nil {
				t.Errorf("Read after Close succeeded")
			}
			if err := d.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestPutDropsWriter checks that a pooled encoder keeps no reference to
// the writer it last wrote to: the destination must become unreachable
// while the encoder itself is still alive.
func TestPutDropsWriter(t *testing.T) {
	e := NewEncoders()
	for _, c := range codings {
		t.Run(c, func(t *testing.T) {
			collected := make(chan struct{})
			enc := func() Encoder {
				dst := new(bytes.Buffer)
				runtime.AddCleanup(dst, func(ch chan struct{}) { close(ch) }, collected)
				enc, err := e.Get(c, Default, dst)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(enc, "hello, hello, hello")
				enc.Close()
				e.Put(enc)
				return enc
			}()
			deadline := time.Now().Add(5 * time.Second)
			for {
				runtime.GC()
				select {
				case <-collected:
					runtime.KeepAlive(enc)
					return
				case <-time.After(10 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("destination writer still reachable from pooled encoder")
				}
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	e := NewEncoders()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				c := codings[(g+i)%len(codings)]
				l := levels[(g*7+i)%len(levels)]
				body := json64k[(g*131+i)%1000 : 8000+(g*977+i*31)%50000]
				var (
					enc []byte
					err error
				)
				if i%2 == 0 {
					enc, err = e.Encode(nil, c, l, body)
				} else {
					var buf bytes.Buffer
					var w Encoder
					if w, err = e.Get(c, l, &buf); err == nil {
						w.Write(body[:len(body)/2])
						w.Flush()
						w.Write(body[len(body)/2:])
						err = w.Close()
						e.Put(w)
						enc = buf.Bytes()
					}
				}
				if err != nil {
					errs <- err
					return
				}
				d, err := NewDecoder(c, bytes.NewReader(enc))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(d)
				d.Close()
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("goroutine %d iter %d %s/%v: mismatch (err %v)", g, i, c, l, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestAllocs pins the point of pooling: once warm, a compressed response
// costs no encoder allocation.
func TestAllocs(t *testing.T) {
	if !poolRetains() {
		t.Skip("sync.Pool drops items at random (race detector build); allocation counts are meaningless")
	}
	e := NewEncoders()
	body := json64k[:16<<10]
	stream := func(c string, l Level) func() {
		return func() {
			enc, err := e.Get(c, l, io.Discard)
			if err != nil {
				panic(err)
			}
			enc.Write(body)
			enc.Close()
			e.Put(enc)
		}
	}
	// sync.Pool drops its contents at GC; AllocsPerRun runs few enough
	// iterations that a GC is unlikely, and a warm-up run fills the pool.
	if n := testing.AllocsPerRun(100, stream(Gzip, Fastest)); n > 2 {
		t.Errorf("gzip Fastest Get/Write/Close/Put: %v allocs/op; want <= 2", n)
	}
	for _, c := range codings {
		if n := testing.AllocsPerRun(50, stream(c, Default)); n > 2 {
			t.Errorf("%s Default stream: %v allocs/op; want <= 2", c, n)
		}
		dst := make([]byte, 0, 64<<10)
		if n := testing.AllocsPerRun(50, func() {
			dst, _ = e.Encode(dst[:0], c, Default, body)
		}); n > 2 {
			t.Errorf("%s Default Encode: %v allocs/op; want <= 2", c, n)
		}
	}
}

// poolRetains reports whether sync.Pool hands back what was just put. It
// does not under -race, where Put deliberately discards a fraction of
// items to shake out code that depends on pooling.
func poolRetains() bool {
	var p sync.Pool
	x := new(int)
	for range 100 {
		p.Put(x)
		if p.Get() != x {
			return false
		}
	}
	return true
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range codings {
		for _, l := range levels {
			b.Run(fmt.Sprintf("%s/%v", c, l), func(b *testing.B) {
				e := NewEncoders()
				dst, _ := e.Encode(nil, c, l, json64k) // warm the pool and size dst
				b.ReportAllocs()
				b.SetBytes(int64(len(json64k)))
				b.ReportMetric(0, "ratio")
				for b.Loop() {
					dst, _ = e.Encode(dst[:0], c, l, json64k)
				}
				b.ReportMetric(float64(len(json64k))/float64(len(dst)), "ratio")
			})
		}
	}
}

// BenchmarkStream measures the streaming path: Get, Write, Close, Put.
func BenchmarkStream(b *testing.B) {
	for _, c := range codings {
		b.Run(c, func(b *testing.B) {
			e := NewEncoders()
			b.ReportAllocs()
			b.SetBytes(int64(len(json64k)))
			for b.Loop() {
				enc, _ := e.Get(c, Fastest, io.Discard)
				enc.Write(json64k)
				enc.Close()
				e.Put(enc)
			}
		})
	}
}

// TestSmallWrites checks that the size of the writes does not change
// the compression much: a proxy copies bodies in whatever pieces the
// upstream sends. Brotli at quality 1 compresses each Write on its own
// unless the encoder collects them.
func TestSmallWrites(t *testing.T) {
	e := NewEncoders()
	body := json64k[:30000]
	for _, c := range codings {
		for _, l := range levels {
			size := func(chunk int) int {
				var buf bytes.Buffer
				enc, err := e.Get(c, l, &buf)
				if err != nil {
					t.Fatal(err)
				}
				for p := body; len(p) > 0; p = p[min(len(p), chunk):] {
					if _, err := enc.Write(p[:min(len(p), chunk)]); err != nil {
						t.Fatal(err)
					}
				}
				if err := enc.Close(); err != nil {
					t.Fatal(err)
				}
				e.Put(enc)
				checkDecodes(t, c, buf.Bytes(), body)
				return buf.Len()
			}
			whole := size(len(body))
			for _, chunk := range []int{1, 100, 4096, 40000} {
				if got := size(chunk); float64(got) > 1.05*float64(whole) {
					t.Errorf("%s %v: %d-byte writes gave %d bytes; one write gives %d", c, l, chunk, got, whole)
				}
			}
		}
	}
}
