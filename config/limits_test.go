package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The overload sections' bad cases join TestParseErrors.
func init() { badCases = append(badCases, limitBadCases...) }

// withBreaker is minimal with a circuit_breaker section on upstream app
// (its lines start at 6).
func withBreaker(body string) string {
	return strings.Replace(minimal, "    targets: [http://127.0.0.1:9000]\n", "    targets: [http://127.0.0.1:9000]\n    circuit_breaker:\n"+body, 1)
}

var limitBadCases = []badCase{
	// rate_limit
	{name: "rate_limit not a mapping", in: minimal + "    rate_limit: 100\n",
		want: []string{`t.yaml:8: routes[0].rate_limit: want a mapping, got "100"`}, n: 1},
	{name: "rate_limit without a rate", in: minimal + "    rate_limit:\n      burst: 10\n",
		want: []string{`t.yaml:8: routes[0].rate_limit.rate: missing (want e.g. rate: 100/s)`}, n: 1},
	{name: "rate_limit bad rate", in: minimal + "    rate_limit:\n      rate: fast\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.rate: invalid rate "fast" (want e.g. 100/s, 30/m, 500/h or a number per second)`}, n: 1},
	{name: "rate_limit bad unit", in: minimal + "    rate_limit:\n      rate: 100/d\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.rate: invalid rate "100/d": unknown unit "d"`}, n: 1},
	{name: "rate_limit negative rate", in: minimal + "    rate_limit:\n      rate: -5/s\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.rate: invalid rate "-5/s": must not be negative`}, n: 1},
	{name: "rate_limit requests_per_second not a number", in: minimal + "    rate_limit:\n      requests_per_second: 100/s\n",
		want: []string{`t.yaml:9: routes[0].rate_limit.requests_per_second: invalid number "100/s"`}, n: 1},
	{name: "rate_limit rate and requests_per_second", in: minimal + "    rate_limit:\n      rate: 100/s\n      requests_per_second: 100\n",
		want: []string{`t.yaml:10: routes[0].rate_limit.requests_per_second: give rate or requests_per_second, not both (rate at line 9)`}, n: 1},
	{name: "rate_limit unknown field", in: minimal + "    rate_limit:\n      rate: 10/s\n      brust: 5\n",
		want: []string{`t.yaml:10: routes[0].rate_limit.brust: unknown field (did you mean "burst"?)`}, n: 1},

	// concurrency
	{name: "concurrency wrong type", in: minimal + "    concurrency:\n      max_in_flight: lots\n",
		want: []string{`t.yaml:9: routes[0].concurrency.max_in_flight: invalid integer "lots"`}, n: 1},

	// circuit_breaker
	{name: "circuit_breaker not a mapping", in: withBreaker("      true\n"),
		want: []string{`t.yaml:7: upstreams.app.circuit_breaker: want a mapping, got "true"`}, n: 1},
	{name: "circuit_breaker counts past 32 bits", in: withBreaker("      min_requests: 4294967297\n      half_open_requests: 4294967296\n"),
		want: []string{
			`t.yaml:7: upstreams.app.circuit_breaker.min_requests: 4294967297: must be at least 1 and at most 4294967295`,
			`t.yaml:8: upstreams.app.circuit_breaker.half_open_requests: 4294967296: must be at least 1 and at most 4294967295`,
		}, n: 2},
	{name: "circuit_breaker zero ratio", in: withBreaker("      failure_ratio: 0\n"),
		want: []string{`t.yaml:7: upstreams.app.circuit_breaker.failure_ratio: 0: want a fraction`}, n: 1},
	{name: "circuit_breaker ratio not a number", in: withBreaker("      failure_ratio: half\n"),
		want: []string{`t.yaml:7: upstreams.app.circuit_breaker.failure_ratio: invalid number "half"`}, n: 1},
	{name: "circuit_breaker unknown field", in: withBreaker("      timeout: 5s\n"),
		want: []string{`t.yaml:7: upstreams.app.circuit_breaker.timeout: unknown field`}, n: 1},
}

// routeConcurrencyDefaults is a route's concurrency section after
// defaults.
func routeConcurrencyDefaults() RouteConcurrency {
	return RouteConcurrency{QueueTimeout: Duration(time.Second)}
}

// TestLimits: values, defaults and explicit zeros of the three sections,
// their form in the effective config, and a dump that loads back.
func TestLimits(t *testing.T) {
	in := withBreaker("      failure_ratio: 0.25\n      open_timeout: 2s\n") +
		"    rate_limit: {rate: 100/s, burst: 200, key: \"header:x-api-key\", max_keys: 5000}\n" +
		"    concurrency: {max_in_flight: 8, queue: 16, queue_timeout: 250ms}\n" +
		"  - {upstream: app, path: /b, rate_limit: {requests_per_second: 2.5}}\n" +
		"  - {upstream: app, path: /c, rate_limit: {rate: 30/m}, concurrency: {max_in_flight: 1}}\n" +
		"  - {upstream: app, path: /d, rate_limit: {rate: 0.5}}\n"
	c, err := Parse("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Upstreams["app"].CircuitBreaker, (&CircuitBreaker{
		FailureRatio: 0.25, MinRequests: 20, Window: Duration(10 * time.Second), OpenTimeout: Duration(2 * time.Second), HalfOpenRequests: 1,
	}); !reflect.DeepEqual(got, want) {
		t.Errorf("circuit_breaker: got %+v; want %+v", got, want)
	}
	wantRL := []*RouteRateLimit{
		{Rate: 100, Burst: 200, Key: "header:x-api-key", MaxKeys: 5000},
		{Rate: 2.5, Burst: 3, Key: "ip", MaxKeys: 100000},
		{Rate: 0.5, Burst: 1, Key: "ip", MaxKeys: 100000},
		{Rate: 0.5, Burst: 1, Key: "ip", MaxKeys: 100000},
	}
	wantCC := []RouteConcurrency{
		{MaxInFlight: 8, Queue: 16, QueueTimeout: Duration(250 * time.Millisecond)},
		routeConcurrencyDefaults(),
		{MaxInFlight: 1, QueueTimeout: Duration(time.Second)},
		routeConcurrencyDefaults(),
	}
	for i := range wantRL {
		if got := c.Routes[i].RateLimit; !reflect.DeepEqual(got, wantRL[i]) {
			t.Errorf("routes[%d].rate_limit: got %+v; want %+v", i, got, wantRL[i])
		}
		if got := c.Routes[i].Concurrency; got != wantCC[i] {
			t.Errorf("routes[%d].concurrency: got %+v; want %+v", i, got, wantCC[i])
		}
	}

	// Absent sections: no breaker, no rate limit.
	d, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if d.Upstreams["app"].CircuitBreaker != nil || d.Routes[0].RateLimit != nil {
		t.Errorf("got breaker %+v, rate limit %+v; want both off", d.Upstreams["app"].CircuitBreaker, d.Routes[0].RateLimit)
	}
	// An empty breaker section takes every default.
	e, err := Parse("t.yaml", []byte(withBreaker("      {}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Upstreams["app"].CircuitBreaker, (&CircuitBreaker{
		FailureRatio: 0.5, MinRequests: 20, Window: Duration(10 * time.Second), OpenTimeout: Duration(10 * time.Second), HalfOpenRequests: 1,
	}); !reflect.DeepEqual(got, want) {
		t.Errorf("circuit_breaker {}: got %+v; want %+v", got, want)
	}

	// The effective config writes rates in their unit.
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Upstreams map[string]struct {
			CircuitBreaker map[string]any `json:"circuit_breaker"`
		}
		Routes []struct {
			RateLimit   map[string]any `json:"rate_limit"`
			Concurrency map[string]any
		}
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"100/s", "150/m", "30/m", "30/m"} {
		if got := shown.Routes[i].RateLimit["rate"]; got != want {
			t.Errorf("effective routes[%d].rate_limit.rate: got %v; want %s", i, got, want)
		}
		if _, ok := shown.Routes[i].RateLimit["requests_per_second"]; ok {
			t.Errorf("effective routes[%d].rate_limit: got requests_per_second; want it folded into rate", i)
		}
	}
	if got, want := shown.Routes[0].Concurrency, map[string]any{"max_in_flight": 8.0, "queue": 16.0, "queue_timeout": "250ms"}; !reflect.DeepEqual(got, want) {
		t.Errorf("effective routes[0].concurrency: got %v; want %v", got, want)
	}
	if got := shown.Upstreams["app"].CircuitBreaker["open_timeout"]; got != "2s" {
		t.Errorf("effective circuit_breaker.open_timeout: got %v; want 2s", got)
	}

	// The dump loads back as the same config.
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("t.yaml", out)
	if err != nil {
		t.Fatalf("reloading\n%s\ngot %v", out, err)
	}
	if !reflect.DeepEqual(again, c) {
		t.Errorf("reloading\n%s\ngot\n%+v\nwant\n%+v", out, again, c)
	}

	// The redacted copy shares no section with the original.
	r := c.Redacted()
	r.Routes[0].RateLimit.Burst = 1
	r.Upstreams["app"].CircuitBreaker.MinRequests = 1
	if c.Routes[0].RateLimit.Burst != 200 || c.Upstreams["app"].CircuitBreaker.MinRequests != 20 {
		t.Errorf("got the original changed through the redacted copy; want them independent")
	}
}

func TestRateForms(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Rate
		str  string
	}{
		{"100/s", 100, "100/s"},
		{"100", 100, "100/s"},
		{" 100 / sec ", 100, "100/s"},
		{"30/m", 0.5, "30/m"},
		{"30/min", 0.5, "30/m"},
		{"7/m", 7.0 / 60, "7/m"},
		{"3600/h", 1, "1/s"},
		{"1/hour", 1.0 / 3600, "1/h"},
		{"0.25/s", 0.25, "15/m"},
		{"2.5", 2.5, "150/m"},
		{"1e3/s", 1000, "1000/s"},
	} {
		got, err := parseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseRate(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("Rate(%v).String(): got %q; want %q", got, s, tt.str)
		}
		if back, err := parseRate(got.String()); err != nil || back != got {
			t.Errorf("parseRate(%q): got %v, %v; want %v back", got.String(), back, err, got)
		}
	}
	// A rate with no whole count per hour is written per second, and
	// still reads back exactly.
	r := Rate(1.0 / 7)
	if back, err := parseRate(r.String()); err != nil || back != r {
		t.Errorf("parseRate(%q): got %v, %v; want %v", r.String(), back, err, r)
	}
	for _, bad := range []string{"", "/s", "x/s", "10/", "10/d", "NaN", "Inf/s"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q): got no error; want one", bad)
		}
	}
}
