// Package entrypoint is where clients' connections come in: the sockets
// the gateway listens on, the protocols spoken on them, and the
// certificates TLS presents.
//
// An Entrypoint binds, serves and drains one socket. TCP is the one for
// HTTP/1.1 and HTTP/2; QUIC serves HTTP/3 (quic.go). A TLS listener with
// Options.HTTP3 gets both, on the same port, as one Entrypoint of its
// Group (so that its index still names it), the TCP side advertising
// the UDP one in Alt-Svc once it is bound; NewQUIC builds one alone for
// Group.Add. A Group is the entrypoints of one configuration:
// bound together (all or none), served over one handler, drained
// together on Shutdown, after which GroupOptions.Drain ends what the
// HTTP servers no longer track (the proxy's upgraded tunnels).
//
// A TCP entrypoint sorts each connection before any HTTP server sees it
// (sort.go): it runs the TLS handshake itself and, on an h2c listener,
// reads the first bytes until they differ from the HTTP/2 preface. An
// HTTP/2 connection goes to x/net/http2's server through h2Guard
// (h2guard.go), which follows its frames and closes it with GOAWAY
// ENHANCE_YOUR_CALM once it has spent its budget of resets and frames
// that get no response (rapid reset and control-frame floods). Any other
// connection goes to net/http's HTTP/1 server through clientConn
// (h1framing.go), which counts the Content-Length fields that pass, so
// that a chunked request that also carried one (request smuggling;
// net/http drops the field before any handler runs) has its connection
// closed after the response; a handler may also have it gather a large
// response's writes into one writev (gather.go, which a cache hit
// does). Read and write timeouts bound stalls rather than whole
// exchanges (timeouts.go).
//
// Certificates come from a CertSource at every handshake: Files serves
// a configured pair and renews it when Group.LoadCertificates is called
// (on reload); a source that obtains certificates itself (ACME) plugs in
// the same way (package acme), with Options.Challenge answering its
// HTTP-01 challenges on a cleartext entrypoint (whose Options.Handler
// redirects the rest to HTTPS), Options.ALPNChallenge offering the
// TLS-ALPN-01 protocol on the TLS one, and Options.AltSvc advertising
// HTTP/3 (set by NewGroup for Options.HTTP3 unless given).
package entrypoint
