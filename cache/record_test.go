package cache

import (
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// recordCases are the round-trip table and the fuzz seeds.
var recordCases = []struct {
	name string
	rec  Record
}{
	{"minimal", Record{Status: 200}},
	{"zero times, no body", Record{Status: 204, Header: http.Header{"Date": {"Thu, 01 Jan 2030 00:00:00 GMT"}}}},
	{"full", Record{
		Status: 200,
		Header: http.Header{
			"Cache-Control":  {"max-age=60, stale-while-revalidate=30"},
			"Content-Type":   {"text/html; charset=utf-8"},
			"Content-Length": {"11"},
			"Etag":           {`"v1"`},
			"Last-Modified":  {"Wed, 31 Dec 2029 00:00:00 GMT"},
			"Set-Thing":      {"a", "b", ""},
			"Vary":           {"Accept-Encoding, Accept-Language"},
		},
		Body:         []byte("hello world"),
		RequestTime:  time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.UTC),
		ResponseTime: time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC),
		Lifetime:     time.Minute,
		InitialAge:   1500 * time.Millisecond,
		Vary:         []string{"Accept-Encoding", "Accept-Language"},
		VaryKey:      []byte("\x00v:Accept-Encoding=gzip\x00v:Accept-Language"),
		Tags:         []string{"product-1", "all"},
		Compress:     CompressEncode,
	}},
	{"heuristic 404, encoded by the origin", Record{
		Status:       404,
		Header:       http.Header{"Content-Encoding": {"gzip"}, "Last-Modified": {"Mon, 01 Jan 2029 00:00:00 GMT"}},
		Body:         []byte{0x1f, 0x8b, 0, 0, 0xff},
		ResponseTime: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		Lifetime:     24 * time.Hour,
		Heuristic:    true,
		Compress:     CompressAsStored,
	}},
	{"long body", Record{Status: 200, Body: bytes.Repeat([]byte{0, 1, 2, 0xff}, 10000), Lifetime: 1<<63 - 1}},
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range recordCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("got %+v; want %+v", got, tc.rec)
			}
			for k, v := range got.Header {
				if len(v) != cap(v) {
					t.Errorf("%s: len %d, cap %d; want equal, so serving never appends in place", k, len(v), cap(v))
				}
			}
			b2, err := got.AppendBinary([]byte("prefix"))
			if err != nil || string(b2[6:]) != string(b) {
				t.Errorf("re-encoding differs (%v): the form is not canonical", err)
			}
			b[len(b)/2] ^= 1
			if err := got.UnmarshalBinary(b); !errors.Is(err, errRecord) {
				t.Errorf("a flipped bit: %v; want a record error", err)
			}
		})
	}
}

// TestRecordEntry: an entry built from a decoded record serves like the
// one stored: the same derived directives, validators and compression.
func TestRecordEntry(t *testing.T) {
	rec := recordCases[2].rec
	b, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	want, e := NewEntry(rec), NewEntry(got)
	if !reflect.DeepEqual(e.CC, want.CC) || e.ETag != `"v1"` || e.LastModified != want.LastModified || !e.compressible ||
		!reflect.DeepEqual(e.varyAE, want.varyAE) || e.coding != "" || e.digests {
		t.Errorf("entry from the decoded record: %+v; want %+v", e, want)
	}
	if e := NewEntry(recordCases[3].rec); e.coding != "gzip" || e.compressible || e.varyAE == nil {
		t.Errorf("origin-encoded record: coding %q, compressible %v, Vary %q; want gzip, false, Accept-Encoding", e.coding, e.compressible, e.varyAE)
	}
}

func TestRecordRejects(t *testing.T) {
	good, err := recordCases[2].rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []Record{
		{Status: 99}, {Status: 1000}, {Status: 200, Lifetime: -1}, {Status: 200, InitialAge: -1},
		{Status: 200, Compress: 3}, {Status: 200, ResponseTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := rec.MarshalBinary(); !errors.Is(err, errRecord) {
			t.Errorf("MarshalBinary(%+v): %v; want a record error", rec, err)
		}
	}
	// reseal recomputes the checksum, so the decoder's other checks are reached.
	reseal := func(b []byte) []byte { return seal(b[:len(b)-4], 0) }
	encode := func(r Record) []byte {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"magic", append([]byte("XWR"), good[3:]...)},
		{"version", reseal(append([]byte("GWR\x02"), good[4:]...))},
		{"truncated", good[:len(good)-5]},
		{"trailing byte", reseal(append(good[:len(good)-4:len(good)-4], 0, 0, 0, 0, 0))},
		{"flags", reseal(append(append([]byte("GWR\x01\x08"), good[5:len(good)-4]...), 0, 0, 0, 0))},
		{"header name", encode(Record{Status: 200, Header: http.Header{"Bad Name": {"x"}}})},
		{"header value", encode(Record{Status: 200, Header: http.Header{"X": {"a\r\nInjected: 1"}}})},
		{"vary field", encode(Record{Status: 200, Vary: []string{"a b"}})},
		{"empty tag", encode(Record{Status: 200, Tags: []string{""}})},
		{"long tag", encode(Record{Status: 200, Tags: []string{strings.Repeat("t", maxTagLen+1)}})},
		{"too many tags", encode(Record{Status: 200, Tags: strings.Fields(strings.Repeat("t ", maxTags+1))})},
	} {
		var r Record
		if err := r.UnmarshalBinary(tc.data); !errors.Is(err, errRecord) {
			t.Errorf("%s: %v; want a record error", tc.name, err)
		}
		if !reflect.DeepEqual(r, Record{}) {
			t.Errorf("%s: the record was changed by a failed decode", tc.name)
		}
	}
}

// FuzzRecord: whatever the bytes, decoding returns a record or an error,
// never panics, and a record it returns encodes back to the same bytes.
// Each input is decoded as it is and resealed with a valid checksum, so
// that mutations reach the checks behind the checksum.
func FuzzRecord(f *testing.F) {
	for _, tc := range recordCases {
		b, err := tc.rec.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		if len(b) <= 1<<10 { // large seeds only slow the mutator down
			f.Add(b)
		}
	}
	f.Add([]byte("GWR\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(data []byte) {
			var r Record
			if err := r.UnmarshalBinary(data); err != nil {
				if !errors.Is(err, errRecord) {
					t.Fatalf("error %v does not wrap errRecord", err)
				}
				return
			}
			b, err := r.MarshalBinary()
			if err != nil {
				t.Fatalf("a decoded record does not encode: %v", err)
			}
			if !bytes.Equal(b, data) {
				t.Fatalf("decode then encode: %q; want %q", b, data)
			}
			NewEntry(r) // and derives what serving needs without panicking
		}
		check(data)
		if len(data) >= 4 {
			check(seal(slices.Clone(data[:len(data)-4]), 0))
		}
	})
}
