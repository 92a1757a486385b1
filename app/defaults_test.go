package app

import (
	"reflect"
	"testing"

	"gateway/batch"
	"gateway/compress"
	"gateway/entrypoint"
	"gateway/limit"
	"gateway/proxy/balance"
)

// TestConfigDefaultsArePackageDefaults: package config writes out the
// defaults it shows in gateway.yaml that are also a package's own, since
// it imports no runtime package; this keeps each equal to the package's
// constant, so the two cannot drift.
func TestConfigDefaultsArePackageDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`listeners:
  - address: 127.0.0.1:8080
upstreams:
  app:
    targets: [http://127.0.0.1:9000]
    circuit_breaker: {}
routes:
  - upstream: app
    rate_limit: {rate: 10/s}
  - path: /dash/{user}
    composite:
      parts: [{key: a, path: /a}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cb := c.Upstreams["app"].CircuitBreaker
	rc := c.Routes[0].Compress
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"listeners[0].http3_max_streams", c.Listeners[0].HTTP3MaxStreams, entrypoint.DefaultHTTP3MaxStreams},
		{"listeners[0].http3_max_connections", c.Listeners[0].HTTP3MaxConnections, entrypoint.DefaultHTTP3MaxConnections},
		{"batch.path", c.Batch.Path, batch.DefaultPath},
		{"batch.max_items", c.Batch.MaxItems, batch.DefaultMaxItems},
		{"batch.max_body_size", int64(c.Batch.MaxBodySize), int64(batch.DefaultMaxBodySize)},
		{"batch.max_response_size", int64(c.Batch.MaxResponseSize), int64(batch.DefaultMaxResponseSize)},
		{"batch.max_total_response_size", int64(c.Batch.MaxTotalResponseSize), int64(batch.DefaultMaxTotalResponseSize)},
		{"batch.concurrency", c.Batch.Concurrency, batch.DefaultConcurrency},
		{"batch.inherit_headers", c.Batch.InheritHeaders, batch.DefaultInheritHeaders},
		{"composite.on_error", c.Routes[1].Composite.OnError, batch.OnErrorFail},
		{"compress.encodings", rc.Encodings, compress.DefaultPreference},
		{"compress.stream_level", rc.StreamLevel, compress.Fastest.String()},
		{"compress.cached_level", rc.CachedLevel, compress.Default.String()},
		{"compress.min_size", int64(rc.MinSize), int64(compress.DefaultMinSize)},
		{"rate_limit.max_keys", c.Routes[0].RateLimit.MaxKeys, limit.DefaultMaxKeys},
		{"circuit_breaker.failure_ratio", cb.FailureRatio, balance.DefaultFailureRatio},
		{"circuit_breaker.min_requests", cb.MinRequests, balance.DefaultMinRequests},
		{"circuit_breaker.window", cb.Window.D(), balance.DefaultWindow},
		{"circuit_breaker.open_timeout", cb.OpenTimeout.D(), balance.DefaultBreakerOpen},
		{"circuit_breaker.half_open_requests", cb.HalfOpenRequests, balance.DefaultHalfOpenRequests},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: config's default is %v (%T); want the package's %v (%T)", tc.name, tc.got, tc.got, tc.want, tc.want)
		}
	}
}
