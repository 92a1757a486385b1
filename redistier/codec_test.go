package redistier

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"gateway/cache"
)

func TestCodecRoundTrip(t *testing.T) {
	m := meta{Primary: primary("c.example", "/"), Vary: []string{"Accept", "Accept-Language"}, PassUntil: time.Unix(0, 1234567890123)}
	got, err := decodeMeta(encodeMeta(m))
	if err != nil || got.Primary != m.Primary || !equalStrings(got.Vary, m.Vary) || !got.PassUntil.Equal(m.PassUntil) {
		t.Fatalf("meta: %+v, %v; want %+v", got, err, m)
	}
	v := variant{Stamp: 42, Linger: time.Minute, Record: []byte("record"), Forms: []cache.Form{{Coding: "br", ETag: `"x"`, Body: []byte("b")}}}
	gv, err := decodeVariant(encodeVariant(v))
	if err != nil || gv.Stamp != 42 || gv.Linger != time.Minute || string(gv.Record) != "record" || len(gv.Forms) != 1 || gv.Forms[0].Coding != "br" {
		t.Fatalf("variant: %+v, %v", gv, err)
	}
	// Every truncation and every flipped bit is refused.
	enc := encodeVariant(v)
	for i := range enc {
		if _, err := decodeVariant(enc[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", i)
		}
		b := bytes.Clone(enc)
		b[i] ^= 0x10
		if _, err := decodeVariant(b); err == nil {
			t.Fatalf("bit flipped at %d: decoded", i)
		}
	}
	if _, err := decodeMeta(enc); err == nil {
		t.Fatal("a variant decoded as a meta")
	}
}

func TestPurgeEntryCodec(t *testing.T) {
	for _, r := range []purgeRec{
		{seq: 7, kind: cache.PurgeKindURL, value: "https\x00h\x00/a b\x00q", origin: "abc"},
		{seq: 8, kind: cache.PurgeKindAll, soft: true, origin: "abc"},
	} {
		e := strconv.FormatUint(r.seq, 10) + " " + encodePurgeArg(r.kind, r.soft, r.origin, r.value)
		got, ok := decodePurge(e)
		if !ok || got != r {
			t.Fatalf("decodePurge(%q) = %+v, %v; want %+v", e, got, ok, r)
		}
	}
	for _, bad := range []string{"", "x 00 o v", "1 40 o v", "1 02 o v", "0 00 o v", "1 00"} {
		if _, ok := decodePurge(bad); ok {
			t.Errorf("decodePurge(%q) accepted", bad)
		}
	}
}

func TestStampAt(t *testing.T) {
	var p purgeLog
	p.init()
	t0 := time.Now()
	if s := p.stampAt(t0); s != 0 {
		t.Fatalf("before anything is known: %d", s)
	}
	p.advanceLocked(5, t0)
	p.advanceLocked(9, t0.Add(time.Second))
	for _, c := range []struct {
		at   time.Time
		want uint64
	}{{t0.Add(-time.Second), 0}, {t0, 5}, {t0.Add(500 * time.Millisecond), 5}, {t0.Add(2 * time.Second), 9}} {
		if got := p.stampAt(c.at); got != c.want {
			t.Errorf("stampAt(%v) = %d; want %d", c.at.Sub(t0), got, c.want)
		}
	}
	// Past what the ring remembers, the answer is older, never newer.
	for i := range 2 * len(p.ring) {
		p.advanceLocked(uint64(10+i), t0.Add(time.Duration(2+i)*time.Second))
	}
	if got := p.stampAt(t0.Add(time.Second)); got != 0 {
		t.Errorf("stampAt past the ring = %d; want 0", got)
	}
}

func TestPurgeLogTrim(t *testing.T) {
	var p purgeLog
	p.init()
	for i := 1; i <= purgeLogLen+purgeLogLen/4+1; i++ {
		p.addLocked(purgeRec{seq: uint64(i), kind: cache.PurgeKindURL, value: strconv.Itoa(i)})
	}
	if len(p.recent) > purgeLogLen {
		t.Fatalf("%d purges kept; want at most %d", len(p.recent), purgeLogLen)
	}
	// A variant stamped before the forgotten purges is taken as purged;
	// one stamped after them is checked against what is kept.
	if v := p.check(1, "other", nil, time.Time{}); v != purgedHard {
		t.Errorf("stamped before the forgotten purges: %d; want hard purged", v)
	}
	last := uint64(purgeLogLen + purgeLogLen/4 + 1)
	if v := p.check(last, "other", nil, time.Time{}); v != purgedNot {
		t.Errorf("stamped after every purge: %d; want not purged", v)
	}
	if v := p.check(last-1, strconv.FormatUint(last, 10), nil, time.Time{}); v != purgedHard {
		t.Errorf("matching a kept purge: %d; want hard purged", v)
	}
}

// FuzzDecode: no input makes a decoder panic, and what decodes encodes
// back to the same bytes (the forms are canonical).
func FuzzDecode(f *testing.F) {
	e := newEntry("body", []string{"Accept"}, "x", []string{"t"}, time.Unix(1700000000, 0))
	e.AddForm(cache.Form{Coding: "gzip", Body: []byte("gz"), ETag: `W/"e1-gz"`})
	rec, _ := e.Record.MarshalBinary()
	f.Add(encodeVariant(variant{Stamp: 3, Linger: time.Second, Record: rec, Forms: e.Forms()}))
	f.Add(encodeMeta(meta{Primary: "p", Vary: []string{"Accept"}, PassUntil: time.Unix(5, 0)}))
	f.Add([]byte("GWT\x01m"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := decodeMeta(data); err == nil {
			if !bytes.Equal(encodeMeta(m), data) {
				t.Fatalf("meta %+v re-encodes differently", m)
			}
		}
		if v, err := decodeVariant(data); err == nil {
			if !bytes.Equal(encodeVariant(v), data) {
				t.Fatalf("variant %+v re-encodes differently", v)
			}
			_, _ = entryOf(v, variantField(nil), nil)
		}
		_, _ = decodePurge(string(data))
	})
}

func benchEntry(size int) *cache.Entry {
	e := newEntry(strings.Repeat("x", size), []string{"Accept-Encoding"}, "gzip", []string{"t1", "t2"}, time.Now())
	e.AddForm(cache.Form{Coding: "gzip", Body: bytes.Repeat([]byte("z"), size/4), ETag: `W/"e1-gzip"`})
	return e
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			tier := &Tier{}
			e := benchEntry(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := tier.encodeEntry("primary", e, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			tier := &Tier{}
			e := benchEntry(size)
			_, field, value, _ := tier.encodeEntry("primary", e, 1)
			data := []byte(value)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				v, err := decodeVariant(data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := entryOf(v, field, e.Vary); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
