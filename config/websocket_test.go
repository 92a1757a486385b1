package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The websocket section's bad cases join TestParseErrors.
func init() { badCases = append(badCases, websocketBadCases...) }

var websocketBadCases = []badCase{
	{name: "websocket not a mapping", in: minimal + "    websocket: true\n",
		want: []string{`t.yaml:8: routes[0].websocket: want a mapping, got "true"`}, n: 1},
	{name: "websocket wrong types", in: minimal + "    websocket:\n      max_connections: many\n      idle_timeout: soon\n",
		want: []string{
			`t.yaml:9: routes[0].websocket.max_connections: `,
			`t.yaml:10: routes[0].websocket.idle_timeout: invalid duration "soon" (want e.g. 250ms, 30s, 2m)`,
		}, n: 2},
	{name: "websocket unknown field", in: minimal + "    websocket:\n      max_conns: 10\n",
		want: []string{`t.yaml:9: routes[0].websocket.max_conns: unknown field`}, n: 1},
	{name: "websocket negative", in: minimal + "    websocket:\n      max_connections: -1\n      idle_timeout: -1s\n",
		want: []string{
			`t.yaml:9: routes[0].websocket.max_connections: -1: must not be negative`,
			`t.yaml:10: routes[0].websocket.idle_timeout: invalid duration "-1s": must not be negative`,
		}, n: 2},
	{name: "websocket on an HTTP/2-only upstream", in: strings.Replace(minimal, "    targets:", "    protocol: h2c\n    targets:", 1) +
		"    websocket:\n      max_connections: 10\n      idle_timeout: 1m\n",
		want: []string{
			`t.yaml:10: routes[0].websocket.max_connections: upstream "app" speaks only HTTP/2 (protocol h2c), which cannot carry WebSocket upgrades; use protocol http1 or auto`,
		}, n: 1},
}

// TestRouteWebSocket: the section's values and defaults, an explicit 0,
// and its form in the effective config.
func TestRouteWebSocket(t *testing.T) {
	c, err := Parse("t.yaml", []byte(minimal+"    websocket:\n      max_connections: 500\n      idle_timeout: 90s\n"+
		"  - upstream: app\n    path: /b\n    websocket: {idle_timeout: 0}\n"+
		"  - upstream: app\n    path: /c\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RouteWebSocket{
		{MaxConnections: 500, IdleTimeout: Duration(90 * time.Second)},
		{MaxConnections: 0, IdleTimeout: 0},
		{MaxConnections: 0, IdleTimeout: Duration(5 * time.Minute)},
	}
	for i, w := range want {
		if got := c.Routes[i].WebSocket; got != w {
			t.Errorf("routes[%d].websocket: got %+v; want %+v", i, got, w)
		}
	}
	b, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	var shown struct {
		Routes []struct{ WebSocket map[string]any }
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatal(err)
	}
	if got, want := shown.Routes[0].WebSocket, map[string]any{"max_connections": 500.0, "idle_timeout": "1m30s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("effective routes[0].websocket: got %v; want %v", got, want)
	}
	// An upstream that may speak HTTP/1.1 takes WebSocket settings.
	for _, proto := range []string{"http1", "auto"} {
		in := strings.Replace(minimal, "    targets:", "    protocol: "+proto+"\n    targets:", 1) + "    websocket: {max_connections: 1}\n"
		if _, err := Parse("t.yaml", []byte(in)); err != nil {
			t.Errorf("protocol %s: %v", proto, err)
		}
	}
}
