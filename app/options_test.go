package app

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"gateway/batch"
	"gateway/compress"
	"gateway/config"
)

// minimal is the smallest valid config, as in package config's tests;
// cases below start from it so their line numbers are easy to follow.
const minimal = `listeners:
  - address: 127.0.0.1:8080
upstreams:
  app:
    targets: [http://127.0.0.1:9000]
routes:
  - upstream: app
`

type nopRouter struct{ http.Handler }

func (nopRouter) RouteOf(*http.Request) (string, bool, bool) { return "", false, false }
func (nopRouter) AllowedMethods(*http.Request) []string      { return nil }

// TestBatchOptions checks the batch and composite sections convert into
// options that package batch accepts, with the meaning the config
// documents.
func TestBatchOptions(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+`    batchable: true
  - name: dash
    path: /dash/{user}
    composite:
      on_error: omit
      parts:
        - key: profile
          path: /users/{user}
        - key: orders
          path: /orders?user={user}
batch:
  enabled: true
  concurrency: 3
  inherit_headers: [Authorization]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Routes[0].Batchable || c.Routes[1].Batchable {
		t.Errorf("got batchable %v, %v; want true, false", c.Routes[0].Batchable, c.Routes[1].Batchable)
	}
	o := batchOptions(c.Batch)
	want := batch.Options{
		Path:                 "/_batch",
		MaxItems:             50,
		MaxBodySize:          1 << 20,
		MaxResponseSize:      4 << 20,
		MaxTotalResponseSize: 16 << 20,
		Concurrency:          3,
		ItemTimeout:          10 * time.Second,
		InheritHeaders:       []string{"Authorization"},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v; want %+v", o, want)
	}
	if _, err := batch.New(o, nopRouter{http.NotFoundHandler()}); err != nil {
		t.Errorf("batch.New: %v", err)
	}
	o.InheritHeaders[0] = "changed"
	if c.Batch.InheritHeaders[0] != "Authorization" {
		t.Errorf("the options share the config's slice")
	}

	if compositeOptions(c.Routes[0]) != nil {
		t.Errorf("got composite options for an upstream route; want nil")
	}
	co := compositeOptions(c.Routes[1])
	wantCo := &batch.CompositeOptions{
		Name:    "dash",
		Path:    "/dash/{user}",
		OnError: "omit",
		Parts:   []batch.Part{{Key: "profile", Path: "/users/{user}"}, {Key: "orders", Path: "/orders?user={user}"}},
	}
	if !reflect.DeepEqual(co, wantCo) {
		t.Errorf("got %+v; want %+v", co, wantCo)
	}
	comp, err := batch.NewComposite(*co)
	if err != nil {
		t.Fatalf("batch.NewComposite: %v", err)
	}
	if got := comp.Prefix(); got != "/dash" {
		t.Errorf("got prefix %q; want /dash", got)
	}

	// on_error defaults to fail.
	c, err = Parse("t.yaml", []byte(minimal+"  - path: /s\n    composite:\n      parts: [{key: a, path: /a}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[1].Composite.OnError; got != batch.OnErrorFail {
		t.Errorf("got on_error %q; want fail", got)
	}
}

// TestBatchMaxTotalResponseSize: the item response bodies of one batch
// are bounded together, by 16MiB unless max_response_size is larger,
// and the bound can hold at least one item's largest body.
func TestBatchMaxTotalResponseSize(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     config.Size
		err      string
	}{
		{"default", "", 16 << 20, ""},
		{"default follows a larger item limit", "  max_response_size: 32MiB\n", 32 << 20, ""},
		{"set", "  max_total_response_size: 8MiB\n", 8 << 20, ""},
		{"equal to the item limit", "  max_response_size: 1MiB\n  max_total_response_size: 1MiB\n", 1 << 20, ""},
		{"zero", "  max_total_response_size: 0\n", 0, "t.yaml:9: batch.max_total_response_size: must be positive"},
		{"below the default item limit", "  max_total_response_size: 1MiB\n", 0,
			"t.yaml:9: batch.max_total_response_size: 1MiB is smaller than batch.max_response_size 4MiB (the default); want at least one item's largest body"},
		{"below the item limit", "  max_response_size: 2MiB\n  max_total_response_size: 1MiB\n", 0,
			"t.yaml:10: batch.max_total_response_size: 1MiB is smaller than batch.max_response_size 2MiB (line 9)"},
		{"item limit bad too", "  max_response_size: 0\n  max_total_response_size: 1MiB\n", 0,
			"t.yaml:9: batch.max_response_size: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(minimal+"batch:\n"+tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Count(err.Error(), "\n") != 0 {
					t.Fatalf("got %v; want the one error %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Batch.MaxTotalResponseSize != tc.want {
				t.Errorf("got %s; want %s", c.Batch.MaxTotalResponseSize, tc.want)
			}
			o := batchOptions(c.Batch)
			if o.MaxTotalResponseSize != int64(tc.want) {
				t.Errorf("options: got %d; want %d", o.MaxTotalResponseSize, tc.want)
			}
			if _, err := batch.New(o, nopRouter{http.NotFoundHandler()}); err != nil {
				t.Errorf("batch.New: %v", err)
			}
		})
	}
}

// TestCompressOptions checks the section converts into options that
// compress.New takes, with the meaning the config documents.
func TestCompressOptions(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"    compress:\n      enabled: true\n      encodings: [zstd, GZIP]\n      stream_level: best\n      min_size: 0\n      types: [text/html]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rc := c.Routes[0].Compress
	o, err := compressOptions(rc)
	if err != nil {
		t.Fatal(err)
	}
	want := compress.Options{Codings: []string{"zstd", "gzip"}, StreamLevel: compress.Best, CachedLevel: compress.Default, MinSize: 1, Types: []string{"text/html"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v; want %+v", o, want)
	}
	if _, err := compress.New(o); err != nil {
		t.Errorf("compress.New: %v", err)
	}
	o.Codings[0] = "changed"
	if rc.Encodings[0] != "zstd" {
		t.Errorf("the options share the config's slice")
	}
	// The defaults convert too, to the package's own defaults.
	d, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	o, err = compressOptions(d.Routes[0].Compress)
	if err != nil {
		t.Fatal(err)
	}
	want = compress.Options{Codings: compress.DefaultPreference, StreamLevel: compress.Fastest, CachedLevel: compress.Default, MinSize: compress.DefaultMinSize, Types: []string{}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults: got %+v; want %+v", o, want)
	}
	if _, err := compressOptions(config.RouteCompress{StreamLevel: "fast", CachedLevel: "best"}); err == nil {
		t.Errorf("Options with a bad level: got no error")
	}
}
