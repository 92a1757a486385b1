package jobs

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// redisFullJob has every field of Job set, so that a round trip that drops
// one shows.
func redisFullJob(id, route string) *Job {
	now := time.Unix(1700000000, 123456789)
	return &Job{
		ID: id, Route: route,
		Method: "POST", Host: "api.example", URI: "/v1/render?x=1",
		Header:         http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}, "X-Empty": {}},
		Body:           []byte(`{"doc":1}`),
		TLS:            true,
		Owner:          bytes.Repeat([]byte{7}, 32),
		IdempotencyKey: "key-1",
		Fingerprint:    bytes.Repeat([]byte{9}, 32),
		CallbackURL:    "https://hooks.example/done",
		State:          StateQueued,
		Attempts:       2, Status: 502, Error: "upstream: bad gateway",
		Created: now, Started: now.Add(time.Second), Finished: now.Add(2 * time.Second),
		NotBefore: now.Add(3 * time.Second), Expires: now.Add(time.Hour),
		ResultStatus: 200, ResultHeader: http.Header{"Content-Type": {"text/plain"}}, ResultSize: 12345,
	}
}

// redisSameJob compares jobs with times by Equal (a decoded time has no
// monotonic reading and is in the local zone).
func redisSameJob(t *testing.T, got, want *Job) {
	t.Helper()
	g, w := *got, *want
	for _, p := range [][2]*time.Time{{&g.Created, &w.Created}, {&g.Started, &w.Started}, {&g.Finished, &w.Finished}, {&g.NotBefore, &w.NotBefore}, {&g.Expires, &w.Expires}} {
		if !p[0].Equal(*p[1]) {
			t.Errorf("time: got %v; want %v", *p[0], *p[1])
		}
		*p[0], *p[1] = time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("job:\ngot  %+v\nwant %+v", g, w)
	}
}

func TestRedisCodecRoundTrip(t *testing.T) {
	for _, j := range []*Job{redisFullJob("0123456789abcdef0123456789abcdef", "render"), {ID: "x", Body: []byte{}, Header: http.Header{}}, {}} {
		got, err := decodeRedisJob(encodeRedisJob(j))
		if err != nil {
			t.Fatal(err)
		}
		redisSameJob(t, got, j)
	}
}

func TestRedisCodecCorrupt(t *testing.T) {
	b := encodeRedisJob(redisFullJob("id", "r"))
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := decodeRedisJob(c); err == nil {
			t.Fatalf("byte %d flipped: decoded", i)
		}
	}
	for n := range len(b) {
		if _, err := decodeRedisJob(b[:n]); err == nil {
			t.Fatalf("cut to %d bytes: decoded", n)
		}
	}
}

func FuzzDecodeRedisJob(f *testing.F) {
	f.Add(encodeRedisJob(redisFullJob("0123456789abcdef0123456789abcdef", "render")))
	f.Add(encodeRedisJob(&Job{}))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeRedisJob(b)
		if err != nil {
			return
		}
		// What decodes encodes again to a record that decodes alike.
		j2, err := decodeRedisJob(encodeRedisJob(j))
		if err != nil {
			t.Fatal(err)
		}
		redisSameJob(t, j2, j)
	})
}
