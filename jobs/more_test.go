package jobs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStrangerSeesNothing(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{}, okUpstream("secret"))
	mine := []string{"Authorization", "Bearer alice"}
	loc := e.submit("GET", "/x", "", mine...)
	e.waitAs(loc, mine, StateSucceeded)
	for _, hdr := range [][]string{{"Authorization", "Bearer mallory"}, nil} {
		for _, p := range []string{loc, loc + "/result"} {
			if r := e.do("GET", p, "", hdr...); r.code != 404 {
				t.Fatalf("GET %s as %v: %d, want 404", p, hdr, r.code)
			}
		}
		if r := e.do("DELETE", loc, "", hdr...); r.code != 404 {
			t.Fatalf("DELETE as %v: %d, want 404", hdr, r.code)
		}
	}
	if r := e.do("GET", loc+"/result", "", mine...); r.code != 200 || string(r.body) != "secret" {
		t.Fatalf("the owner: %d %q", r.code, r.body)
	}
	// A job made without credentials is for requests without them.
	anon := e.submit("GET", "/y", "")
	e.wait(anon, StateSucceeded)
	if r := e.do("GET", anon, "", mine...); r.code != 404 {
		t.Fatalf("an anonymous job seen with credentials: %d", r.code)
	}
}

func TestCredentialCookie(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{CredentialCookie: "sid"}, okUpstream("x"))
	loc := e.submit("GET", "/x", "", "Cookie", "sid=one")
	e.waitAs(loc, []string{"Cookie", "sid=one"}, StateSucceeded)
	if r := e.do("GET", loc, "", "Cookie", "sid=two", "Authorization", "Bearer x"); r.code != 404 {
		t.Fatalf("another cookie: %d, want 404", r.code)
	}
}

func TestQueueFull(t *testing.T) {
	leaks(t)
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	e := newEnv(t, RouteOptions{Concurrency: 1, QueueDepth: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	a := e.submit("GET", "/1", "")
	waitFor(t, arrived, "the first attempt")
	b := e.submit("GET", "/2", "")
	r := e.do("GET", "/3", "", "Prefer", "respond-async")
	if r.code != http.StatusServiceUnavailable || r.h.Get("Retry-After") == "" || r.json(t)["error"] != "queue full" {
		t.Fatalf("past the depth: %d %v %s", r.code, r.h, r.body)
	}
	if s := e.q.Stats(); s.Rejected != 1 || s.Queued != 1 || s.Running != 1 {
		t.Fatalf("stats %+v", s)
	}
	close(release)
	e.wait(a, StateSucceeded)
	e.wait(b, StateSucceeded)
}

func TestResultTooLarge(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{MaxResultSize: 1000}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 5 {
			w.Write([]byte(strings.Repeat("x", 1000)))
			w.(http.Flusher).Flush() // chunked: the size is learnt while streaming
		}
	}))
	loc := e.submit("GET", "/big", "")
	m := e.wait(loc, StateFailed)
	if m["error"] != "result larger than max_result_size 1000" {
		t.Fatalf("job %v", m)
	}
	if r := e.do("GET", loc+"/result", ""); r.code != 404 {
		t.Fatalf("result of a too large job: %d", r.code)
	}
}

func TestCallbackSigned(t *testing.T) {
	leaks(t)
	secret := []byte("s3cret")
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	var fails int
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if fails < 1 { // the first delivery fails: it is retried
			fails++
			w.WriteHeader(500)
			return
		}
		got <- r
		bodies <- b
	}))
	t.Cleanup(recv.Close)
	e := newEnv(t, RouteOptions{CallbackHosts: []string{"127.0.0.1"}, CallbackSecret: secret, Backoff: 10 * time.Millisecond}, okUpstream("result!"))
	loc := e.submit("GET", "/x", "", "Callback-Url", recv.URL+"/hook")
	e.wait(loc, StateSucceeded)
	r := waitFor(t, got, "the callback")
	body := <-bodies
	sig := r.Header.Get("Gateway-Signature")
	ts, v1, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	if !ok {
		t.Fatalf("Gateway-Signature %q", sig)
	}
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, ts+".")
	m.Write(body)
	want := hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(v1), []byte(want)) {
		t.Fatalf("signature %s, want %s", v1, want)
	}
	var cb CallbackBody
	if err := json.Unmarshal(body, &cb); err != nil {
		t.Fatal(err)
	}
	if "/_jobs/"+cb.ID != loc || cb.Status != StateSucceeded || cb.LastStatus != 200 || string(cb.Body) != "result!" {
		t.Fatalf("callback %+v", cb)
	}
	if s := e.q.Stats(); s.CallbackFailures != 0 {
		t.Fatalf("callback failures %d", s.CallbackFailures)
	}
}

func TestCallbackFailuresCounted(t *testing.T) {
	leaks(t)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(recv.Close)
	e := newEnv(t, RouteOptions{CallbackHosts: []string{"127.0.0.1"}, CallbackSecret: []byte("k"), Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, okUpstream("x"))
	loc := e.submit("GET", "/x", "", "Callback-Url", recv.URL)
	e.wait(loc, StateSucceeded)
	deadline := time.Now().Add(10 * time.Second)
	for e.q.Stats().CallbackFailures != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the failed callback was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCallbackRefused(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{CallbackHosts: []string{"hooks.example"}, CallbackSecret: []byte("k")}, okUpstream("x"))
	for _, u := range []string{"http://127.0.0.1/hook", "ftp://hooks.example/x", "/relative"} {
		r := e.do("GET", "/x", "", "Prefer", "respond-async", "Callback-Url", u)
		if r.code != 400 || r.json(t)["error"] == "" {
			t.Fatalf("Callback-Url %s: %d %s, want 400 with a reason", u, r.code, r.body)
		}
	}
	if r := e.do("GET", "/x", "", "Prefer", "respond-async", "Callback-Url", "https://hooks.example/x"); r.code != 202 {
		t.Fatalf("an allowed host: %d", r.code)
	}
	plain := newEnv(t, RouteOptions{}, okUpstream("x"))
	if r := plain.do("GET", "/x", "", "Prefer", "respond-async", "Callback-Url", "https://hooks.example/x"); r.code != 400 {
		t.Fatalf("a route without callbacks: %d, want 400", r.code)
	}
}

func TestRequestKeptAsSent(t *testing.T) {
	leaks(t)
	seen := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	e := newEnv(t, RouteOptions{MaxBodySize: 100}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen <- r
		bodies <- string(b)
	}))
	e.submit("POST", "/in?q=1", "hello", "X-Keep", "yes", "Connection", "X-Drop", "X-Drop", "no", "Proxy-Thing", "no", "Idempotency-Key", "i")
	r := waitFor(t, seen, "the attempt")
	if b := <-bodies; b != "hello" || r.URL.RequestURI() != "/in?q=1" || r.Method != "POST" {
		t.Fatalf("upstream saw %s %s %q", r.Method, r.URL, b)
	}
	if r.Header.Get("X-Keep") != "yes" || r.Header.Get("X-Drop") != "" || r.Header.Get("Proxy-Thing") != "" {
		t.Fatalf("upstream headers %v", r.Header)
	}
	if big := e.do("POST", "/in", strings.Repeat("b", 101), "Prefer", "respond-async"); big.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over the limit: %d, want 413", big.code)
	}
}

func TestJobPaths(t *testing.T) {
	leaks(t)
	e := newEnv(t, RouteOptions{}, okUpstream("x"))
	loc := e.submit("GET", "/x", "")
	e.wait(loc, StateSucceeded)
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"POST", loc, 405, "GET, HEAD, DELETE"},
		{"PUT", loc + "/result", 405, "GET, HEAD"},
		{"GET", "/_jobs/0123456789abcdef0123456789abcdef", 404, ""},
		{"GET", "/_jobs/nothex", 404, ""},
		{"GET", "/_jobs/0123456789ABCDEF0123456789ABCDEF", 404, ""},
		{"GET", loc + "/other", 404, ""},
		{"GET", "/_jobs/", 404, ""},
		{"GET", "/y/.." + loc, 303, ""},
	} {
		r := e.do(c.method, c.path, "")
		if r.code != c.code || r.h.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, r.code, r.h.Get("Allow"), c.code, c.allow)
		}
	}
}

func TestDurableAcrossCrash(t *testing.T) {
	leaks(t)
	var hits = make(chan struct{}, 1)
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- struct{}{}
		io.WriteString(w, "after restart")
	}), envOpt{noRunner: true})
	loc := e.submit("POST", "/x", "body")
	e.crash()
	select {
	case <-hits:
		t.Fatal("the job ran before the restart")
	default:
	}
	e.open(envOpt{})
	m := e.wait(loc, StateSucceeded)
	if m["attempts"].(float64) != 1 {
		t.Fatalf("job %v", m)
	}
	if r := e.do("GET", loc+"/result", ""); string(r.body) != "after restart" {
		t.Fatalf("result %q", r.body)
	}
}

func TestRunningJobRequeuedOnOpen(t *testing.T) {
	leaks(t)
	path := t.TempDir() + "/jobs.db"
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{ID: newID(), Route: "r", Method: "GET", Host: "h", URI: "/x", Created: time.Now()}
	if _, _, err := s.Enqueue(context.Background(), j, 10); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(context.Background(), "r", time.Minute)
	if err != nil || c == nil || c.State != StateRunning || c.Attempts != 1 {
		t.Fatalf("claim %+v %v", c, err)
	}
	if err := s.Close(); err != nil { // the process dies mid-attempt
		t.Fatal(err)
	}
	e := newEnv(t, RouteOptions{}, okUpstream("again"), envOpt{path: path})
	m := e.wait("/_jobs/"+j.ID, StateSucceeded)
	if m["attempts"].(float64) != 2 {
		t.Fatalf("job %v, want its interrupted attempt counted", m)
	}
}

func TestShutdownRequeuesRunning(t *testing.T) {
	leaks(t)
	arrived := make(chan struct{}, 1)
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	loc := e.submit("GET", "/x", "")
	waitFor(t, arrived, "the attempt")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.q.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil with an attempt still running past its ctx")
	}
	j, err := e.store.Get(context.Background(), strings.TrimPrefix(loc, "/_jobs/"))
	if err != nil || j.State != StateQueued || j.Attempts != 1 {
		t.Fatalf("after Shutdown: %+v %v, want queued again", j, err)
	}
}

func TestShutdownWaitsForAttempts(t *testing.T) {
	leaks(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	e := newEnv(t, RouteOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "finished")
	}))
	loc := e.submit("GET", "/x", "")
	waitFor(t, arrived, "the attempt")
	done := make(chan error, 1)
	go func() { done <- e.q.Shutdown(ctxTimeout(t, 10*time.Second)) }()
	close(release)
	if err := waitFor(t, done, "Shutdown"); err != nil {
		t.Fatal(err)
	}
	j, _ := e.store.Get(context.Background(), strings.TrimPrefix(loc, "/_jobs/"))
	if j.State != StateSucceeded {
		t.Fatalf("state %s, want the attempt finished", j.State)
	}
}

func FuzzDecodeJob(f *testing.F) {
	j := &Job{ID: "0123456789abcdef0123456789abcdef", Route: "r", Method: "GET", URI: "/", State: StateQueued,
		Header: map[string][]string{"A": {"b"}}, Body: []byte("x"), Created: time.Unix(1, 0)}
	rec, err := EncodeJob(j)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(append([]byte{1}, rec[recordHead:len(rec)-4]...)) // the payload alone: the framed path
	f.Add([]byte("GJOB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(j *Job) {
			again, err := EncodeJob(j)
			if err != nil {
				t.Fatalf("a decoded job does not encode: %v", err)
			}
			if _, err := DecodeJob(again); err != nil {
				t.Fatalf("a re-encoded job does not decode: %v", err)
			}
		}
		if j, err := DecodeJob(b); err == nil {
			check(j)
		}
		// The same bytes as the payload of a well-framed record (valid
		// checksum), so that the fuzzer reaches the decoding behind it.
		if len(b) > 0 {
			framed := append([]byte(recordMagic), recordVersion, b[0]%7)
			framed = append(framed, b[1:]...)
			framed = binary.BigEndian.AppendUint32(framed, crc32.Checksum(framed, crcTable))
			if j, err := DecodeJob(framed); err == nil {
				check(j)
			}
		}
	})
}

func TestDecodeJobRejectsCorruption(t *testing.T) {
	j := &Job{ID: "0123456789abcdef0123456789abcdef", State: StateRunning, Created: time.Unix(5, 0)}
	rec, _ := EncodeJob(j)
	if got, err := DecodeJob(rec); err != nil || got.ID != j.ID || got.State != StateRunning {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for i := range rec {
		bad := append([]byte(nil), rec...)
		bad[i] ^= 0x40
		if _, err := DecodeJob(bad); err == nil {
			t.Fatalf("a flipped byte %d went unnoticed", i)
		}
	}
	if _, err := DecodeJob(rec[:len(rec)-1]); err == nil {
		t.Fatal("a torn record went unnoticed")
	}
}
