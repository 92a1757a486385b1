package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"gateway/app"
	"gateway/memlimit"
)

// TestMemoryPlan: each memory_profile maps to the GC floor, soft limit
// and return of idle memory it promises, and gc_heap_floor overrides the
// profile's floor.
func TestMemoryPlan(t *testing.T) {
	const base = "listeners: [{address: 127.0.0.1:8080}]\nupstreams: {app: {targets: [http://127.0.0.1:9000]}}\nroutes: [{path: /, upstream: app, cache: {enabled: true}}]\ncache: {max_size: 64MiB}\n"
	tests := []struct {
		name       string
		extra      string
		caches     bool
		floor      int64
		limit      bool
		trim       bool
		minSurplus uint64
	}{
		{"file default (edge)", "", true, 64 << 20, true, true, 0},
		{"edge with a cache", "memory_profile: edge\n", true, 64 << 20, true, true, 0},
		{"edge without a cache", "memory_profile: edge\n", false, 64 << 20, false, false, 0},
		{"sidecar with a cache", "memory_profile: sidecar\n", true, 0, true, true, 4 << 20},
		{"sidecar without a cache", "memory_profile: sidecar\n", false, 0, false, true, 4 << 20},
		{"sidecar, gc_heap_floor overrides", "memory_profile: sidecar\ngc_heap_floor: 16MiB\n", true, 16 << 20, true, true, 4 << 20},
		{"edge, gc_heap_floor 0 overrides", "memory_profile: edge\ngc_heap_floor: 0\n", true, 0, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := app.Parse("t.yaml", []byte(base+tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			p := planMemory(cfg, tt.caches)
			if p.floor != tt.floor {
				t.Errorf("GC floor %d MiB; want %d MiB", p.floor>>20, tt.floor>>20)
			}
			if p.limit != tt.limit {
				t.Errorf("soft limit set: %t; want %t", p.limit, tt.limit)
			}
			if p.limit && memlimit.For(p.cacheBytes) != 112<<20 {
				t.Errorf("soft limit %d MiB; want 112 MiB (64 MiB x 1.25 + 32 MiB)", memlimit.For(p.cacheBytes)>>20)
			}
			if (p.trim != nil) != tt.trim {
				t.Fatalf("trimmer: %t; want %t", p.trim != nil, tt.trim)
			}
			if p.trim != nil && p.trim.MinSurplus != tt.minSurplus {
				t.Errorf("trim MinSurplus %d MiB; want %d MiB (0: the package's 16 MiB)", p.trim.MinSurplus>>20, tt.minSurplus>>20)
			}
		})
	}
}

// TestProxyProfileFlag: gateway proxy is a sidecar unless --profile edge
// says otherwise, and the effective config (/config) says which, with
// the floor the profile gave.
func TestProxyProfileFlag(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	for _, tc := range []struct {
		flags          []string
		profile, floor string
	}{
		{nil, "sidecar", "0"},
		{[]string{"--profile", "edge"}, "edge", "64MiB"},
	} {
		args := append([]string{"proxy", "--listen", "127.0.0.1:0", "--to", up.URL, "--admin", "127.0.0.1:0", "--access-log", "off"}, tc.flags...)
		c := startChild(t, args...)
		_, adm := c.waitAddrs(t, true)
		var cfg struct {
			MemoryProfile string `json:"memory_profile"`
			GCHeapFloor   string `json:"gc_heap_floor"`
		}
		if err := json.Unmarshal([]byte(get(t, "http://"+adm+"/config", http.StatusOK)), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.MemoryProfile != tc.profile || cfg.GCHeapFloor != tc.floor {
			t.Errorf("%v: /config has memory_profile %q, gc_heap_floor %q; want %q, %q", tc.flags, cfg.MemoryProfile, cfg.GCHeapFloor, tc.profile, tc.floor)
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		if code := c.wait(t); code != 0 {
			t.Fatalf("exit code: got %d; want 0", code)
		}
	}
}

// TestProxyProfileFlagInvalid: a --profile that is no profile is a usage
// error naming the flag.
func TestProxyProfileFlagInvalid(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"proxy", "--to", "127.0.0.1:9", "--profile", "tiny"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d; want 2", code)
	}
	if want := `invalid value "tiny" for flag --profile: want sidecar or edge`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q; want it to contain %q", stderr.String(), want)
	}
}
