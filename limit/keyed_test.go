package limit

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newKeyed(t testing.TB, o KeyedOptions) *Keyed {
	t.Helper()
	k, err := NewKeyed(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyedBurstThenRefill: a key gets exactly Burst requests at once,
// then one per 1/Rate, and the refusal says how long to wait.
func TestKeyedBurstThenRefill(t *testing.T) {
	k := newKeyed(t, KeyedOptions{Rate: 2, Burst: 3})
	now := epoch
	for i := range 3 {
		if ok, _ := k.AllowString("a", now); !ok {
			t.Fatalf("request %d: refused; want allowed within the burst", i+1)
		}
	}
	ok, wait := k.AllowString("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("request 4: got %v, wait %v; want refused, wait 500ms", ok, wait)
	}
	// The refusal took no token: half a second later one is there.
	now = now.Add(500 * time.Millisecond)
	if ok, _ := k.AllowString("a", now); !ok {
		t.Fatalf("after 500ms: refused; want allowed")
	}
	if ok, wait := k.AllowString("a", now); ok || wait != 500*time.Millisecond {
		t.Fatalf("again: got %v, wait %v; want refused, wait 500ms", ok, wait)
	}
	// Another key has its own bucket.
	if ok, _ := k.Allow([]byte("b"), now); !ok {
		t.Fatalf("key b: refused; want its own full bucket")
	}
}

func TestKeyedOptions(t *testing.T) {
	for _, o := range []KeyedOptions{
		{Rate: 0, Burst: 1},
		{Rate: -1, Burst: 1},
		{Rate: 1, Burst: 0},
		{Rate: 1, Burst: 1, MaxKeys: -1},
	} {
		if _, err := NewKeyed(o); err == nil {
			t.Errorf("NewKeyed(%+v): got no error; want one", o)
		}
	}
}

// TestKeyedForgetsIdleKeys: a key whose bucket has refilled is dropped
// at the next sweep of its shard, and a timed sweep returns the memory
// of a crowd that is gone.
func TestKeyedForgetsIdleKeys(t *testing.T) {
	k := newKeyed(t, KeyedOptions{Rate: 10, Burst: 10})
	now := epoch
	const n = 20_000
	for i := range n {
		k.AllowString("client-"+strconv.Itoa(i), now)
	}
	if got := k.Len(); got < n*9/10 {
		t.Fatalf("got %d keys tracked; want about %d (none idle yet)", got, n)
	}
	// One second refills every bucket; past the sweep interval the
	// first request to a shard clears it. New clients arrive until
	// every shard has been cleared: only they are left.
	now = now.Add(sweepEvery + time.Second)
	late := 0
	for k.Len() > late {
		if late == 10_000 {
			t.Fatalf("got %d keys tracked after %d new clients; want only those", k.Len(), late)
		}
		k.AllowString("late-"+strconv.Itoa(late), now)
		late++
	}
	t.Logf("the crowd of %d was forgotten after %d new clients", n, late)
}

// TestKeyedCap: with every bucket in use, the number of keys stays at
// MaxKeys (rounded up to a multiple of the shards), busy keys being
// dropped.
func TestKeyedCap(t *testing.T) {
	const maxKeys = 1024
	k := newKeyed(t, KeyedOptions{Rate: 0.001, Burst: 1, MaxKeys: maxKeys})
	var b [4]byte
	for i := range 100_000 {
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if ok, _ := k.Allow(b[:], epoch); !ok {
			t.Fatalf("key %d: refused; want a fresh key allowed", i)
		}
	}
	if got := k.Len(); got > maxKeys {
		t.Errorf("got %d keys tracked; want at most %d", got, maxKeys)
	}
	if k.Evicted() == 0 {
		t.Errorf("got no evictions; want some at the cap")
	}
}

// TestParseKey: ip (or nothing) keys by address; header:NAME by that
// field, canonical; anything else is refused with the reason.
func TestParseKey(t *testing.T) {
	for key, want := range map[string]string{"": "", "ip": "", "header:x-api-key": "X-Api-Key", "header:Authorization": "Authorization"} {
		if got, err := ParseKey(key); err != nil || got != want {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for key, why := range map[string]string{"cookie:a": "want ip or header:NAME", "header": "invalid header name", "header:": "invalid header name", "header:a b": "invalid header name", "IP": "want ip"} {
		if _, err := ParseKey(key); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseKey(%q): error %v; want one saying %q", key, err, why)
		}
	}
}
