package proxy_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"gateway/proxy"
)

// A route sends GET /api/users/... to the "users" upstream without the
// /api/users prefix; every other request gets 404 from the gateway.
func ExampleNew() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s %s", r.Method, r.URL.RequestURI())
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	if err != nil {
		log.Fatal(err)
	}

	users, err := proxy.NewUpstream(proxy.UpstreamOptions{
		Name:     "users",
		Targets:  []*url.URL{target},
		Protocol: proxy.ProtoHTTP1,
		MaxFails: 3,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer users.Close()

	h, err := proxy.New(proxy.Options{Routes: []proxy.RouteOptions{{
		Name:        "users-api",
		Path:        "/api/users",
		Methods:     []string{http.MethodGet},
		StripPrefix: true,
		Timeout:     5 * time.Second,
		Upstream:    users,
	}}})
	if err != nil {
		log.Fatal(err)
	}
	gateway := httptest.NewServer(h)
	defer gateway.Close()

	for _, path := range []string{"/api/users/42?fields=name", "/other"} {
		resp, err := http.Get(gateway.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// /api/users/42?fields=name: 200 upstream saw GET /42?fields=name
	// /other: 404 no route
}
