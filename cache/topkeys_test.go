package cache

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// TestTopKExact: a stream of no more distinct keys than the capacity is
// counted exactly, and listed largest first.
func TestTopKExact(t *testing.T) {
	var tk topK
	var stream []string
	for i := range keyCapacity {
		for range i + 1 {
			stream = append(stream, "k"+strconv.Itoa(i))
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	for _, k := range stream {
		tk.add(k, 1)
	}
	got := tk.largest(keyCapacity + 10)
	if len(got) != keyCapacity {
		t.Fatalf("got %d keys; want %d", len(got), keyCapacity)
	}
	for i, s := range got {
		want := keyCapacity - i
		if s.key != "k"+strconv.Itoa(want-1) || s.count != uint64(want) || s.err != 0 {
			t.Fatalf("rank %d: %s %d (err %d); want k%d %d (err 0)", i, s.key, s.count, s.err, want-1, want)
		}
	}
	if top3 := tk.largest(3); len(top3) != 3 || top3[0].key != got[0].key {
		t.Fatalf("largest(3) = %v", top3)
	}
}

// TestTopKBounded: 100k distinct keys never hold more than the capacity,
// and the keys that recur often stay on top with counts no lower than
// their real ones.
func TestTopKBounded(t *testing.T) {
	var tk topK
	exact := map[string]uint64{}
	for i := range 100_000 {
		k := "cold" + strconv.Itoa(i)
		if i%10 == 0 {
			k = "hot" + strconv.Itoa(i%30) // hot0, hot10, hot20
		}
		tk.add(k, 1)
		exact[k]++
		if len(tk.slot) > keyCapacity || len(tk.at) > keyCapacity {
			t.Fatalf("after %d keys: %d slots, %d indexed; want at most %d", i+1, len(tk.slot), len(tk.at), keyCapacity)
		}
	}
	got := tk.largest(3)
	keys := []string{got[0].key, got[1].key, got[2].key}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"hot0", "hot10", "hot20"}) {
		t.Fatalf("top 3 %v; want hot0, hot10, hot20", keys)
	}
	for _, s := range got {
		if s.count < exact[s.key] || s.count-s.err > exact[s.key] {
			t.Errorf("%s: count %d err %d; real %d must lie within", s.key, s.count, s.err, exact[s.key])
		}
	}
	all := tk.largest(keyCapacity)
	if !slices.IsSortedFunc(all, func(a, b topSlot) int { return -int(a.count) + int(b.count) }) {
		t.Errorf("not largest first: %v", all)
	}
}

// TestKeySketchSampling: past sampleAll a busy key is counted by
// sampling, and its estimate stays close to its real count.
func TestKeySketchSampling(t *testing.T) {
	var ks keySketch
	const n = sampleAll + 80_000
	for range n {
		ks.note("k")
	}
	got := ks.largest(1)
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	if c := got[0].Count; c < n*9/10 || c > n*11/10 {
		t.Fatalf("estimate %d; want within 10%% of %d", c, n)
	}
}

// TestTopKeysConcurrent: requests noting keys, pages reading them and
// the watch turned on and off, all at once (run with -race).
func TestTopKeysConcurrent(t *testing.T) {
	c, err := New(Options{MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rt, err := c.Route(RouteOptions{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	c.WatchKeys(true)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				k := fmt.Sprintf("http\x00h\x00/%d\x00", (i*(g+1))%100)
				rt.noteHit(k)
				rt.noteMiss(k)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			hits, misses := c.TopKeys("r", 10)
			for _, l := range [][]KeyCount{hits, misses} {
				if len(l) > 10 || !slices.IsSortedFunc(l, func(a, b KeyCount) int { return -int(a.Count) + int(b.Count) }) {
					t.Errorf("TopKeys: %v; want at most 10, largest first", l)
					return
				}
			}
			if i%50 == 49 {
				c.WatchKeys(false)
				c.WatchKeys(true)
			}
		}
	})
	wg.Wait()
	c.WatchKeys(false)
	if hits, misses := c.TopKeys("r", 10); hits != nil || misses != nil {
		t.Fatalf("after WatchKeys(false): %v, %v; want none", hits, misses)
	}
	if rt.stats.keys.Load() != nil {
		t.Fatal("WatchKeys(false) left the route's sketches")
	}
}

// TestDisplayKey: keys read as host, path and query.
func TestDisplayKey(t *testing.T) {
	for _, tc := range []struct {
		url, hdr, want string
		headers        []string
	}{
		{url: "http://Example.com/a/b?y=2&x=1", want: "example.com/a/b?x=1&y=2"},
		{url: "http://example.com:80/", want: "example.com/"},
		{url: "https://example.com/s", want: "https://example.com/s"},
		{url: "http://example.com/v", headers: []string{"Accept-Language"}, hdr: "fr", want: "example.com/v h:Accept-Language=fr"},
	} {
		k, err := NewKeyer(KeyOptions{Headers: tc.headers})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", tc.url, nil)
		if tc.hdr != "" {
			r.Header.Set("Accept-Language", tc.hdr)
		}
		if got := displayKey(k.Key(r)); got != tc.want {
			t.Errorf("%s: got %q; want %q", tc.url, got, tc.want)
		}
	}
}
