package acme

import (
	"net"
	"net/http"
)

// Redirect is the handler of the cleartext challenge listener for what
// is not a challenge: a permanent redirect to the same host and path
// over HTTPS on tlsPort ("443", or empty, leaves the port out). GET and
// HEAD get 301; other methods 308, so that a client repeats the method
// and body.
func Redirect(tlsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "Host required", http.StatusBadRequest)
			return
		}
		if tlsPort != "" && tlsPort != "443" {
			host = net.JoinHostPort(host, tlsPort)
		} else if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
			host = "[" + host + "]"
		}
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
}
