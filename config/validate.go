package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// validate checks the decoded, defaulted config and normalizes route
// hosts and methods. Problems go to d with the line of the field.
func validate(c *Config, d *decoder) {
	for i, s := range c.TrustedProxies {
		if _, err := ParsePrefix(s); err != nil {
			d.report(indexPath("trusted_proxies", i), "invalid %q (want a CIDR such as 10.0.0.0/8 or an IP address)", s)
		}
	}
	binds := validateListeners(c, d)
	validateAdmin(c, d, binds)
	oneOf(d, "memory_profile", c.MemoryProfile, MemorySidecar, MemoryEdge)
	oneOf(d, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(d, "log.format", c.Log.Format, "text", "json")
	validateAccessLog(c, d)
	validateUpstreams(c, d)
	validateRoutes(c, d)
	validateCache(c, d)
	validateBatch(c, d)
	for i := range c.Routes {
		validateRouteWebSocket(c, d, i)
	}
	validateLimits(c, d) // limits.go
	validateShared(c, d) // shared.go
	validateJobs(c, d)   // jobs.go
}

// normalize lower-cases what is matched case-insensitively, so the
// effective config shows one spelling. It runs after every check, so
// that messages quote values as the file writes them.
func normalize(c *Config) {
	for i := range c.Routes {
		rc := &c.Routes[i].Compress
		for j, e := range rc.Encodings {
			rc.Encodings[j] = strings.ToLower(e)
		}
		for j, t := range rc.Types {
			rc.Types[j] = strings.ToLower(t)
		}
	}
}

// bind is a listening address, kept to find two sockets that could not
// both be bound.
type bind struct {
	path, addr string
	host, port string
}

func (b bind) conflicts(o bind) bool {
	if b.port != o.port || b.port == "0" {
		return false
	}
	return b.host == o.host || isWildcard(b.host) || isWildcard(o.host)
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

// parseBind splits a listen address, normalizing the port so that
// ":08080" and ":8080" compare equal.
func parseBind(addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", "", errors.New(ae.Err)
		}
		return "", "", err
	}
	if port == "" {
		return "", "", errors.New("missing port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return strings.ToLower(host), strconv.FormatUint(n, 10), nil
}

// maxHeaderBytes bounds listeners[].max_header_bytes.
const maxHeaderBytes = 64 << 20

func validateListeners(c *Config, d *decoder) []bind {
	if len(c.Listeners) == 0 {
		d.report("listeners", "no listeners (want at least one, e.g. - address: 127.0.0.1:8080)")
	}
	var binds []bind
	for i, l := range c.Listeners {
		p := indexPath("listeners", i)
		ap := p + ".address"
		if l.Address == "" {
			d.report(ap, "missing (want host:port, e.g. 127.0.0.1:8080)")
		} else if host, port, err := parseBind(l.Address); err != nil {
			d.report(ap, "invalid address %q: %v (want host:port, e.g. 127.0.0.1:8080)", l.Address, err)
		} else {
			b := bind{path: ap, addr: l.Address, host: host, port: port}
			for _, o := range binds {
				if b.conflicts(o) {
					d.report(ap, "%q conflicts with %s %q (line %d)", l.Address, o.path, o.addr, d.line(o.path))
					break
				}
			}
			binds = append(binds, b)
		}

		tp := p + ".tls"
		hasCert, hasKey := l.TLS.CertFile != "", l.TLS.KeyFile != ""
		switch {
		case hasCert && !hasKey:
			d.report(tp+".key_file", "missing; tls needs both cert_file and key_file")
		case hasKey && !hasCert:
			d.report(tp+".cert_file", "missing; tls needs both cert_file and key_file")
		}
		certOK := checkFile(d, tp+".cert_file", l.TLS.CertFile)
		keyOK := checkFile(d, tp+".key_file", l.TLS.KeyFile)
		// A garbage, swapped or mismatched pair would otherwise pass
		// validate and a reload, and fail only the next start.
		if hasCert && hasKey && certOK && keyOK {
			if _, err := tls.LoadX509KeyPair(l.TLS.CertFile, l.TLS.KeyFile); err != nil {
				d.report(tp+".cert_file", "cannot load certificate %q with key_file %q: %v", l.TLS.CertFile, l.TLS.KeyFile, err)
			}
		}
		if l.TLS.ACME != nil {
			binds = validateACME(d, p, l, binds)
		}
		if l.HTTP3 && !(hasCert && hasKey) && l.TLS.ACME == nil {
			d.report(p+".http3", "http3 needs tls (cert_file and key_file, or acme): HTTP/3 is always encrypted")
		}
		// No cap is offered: a connection without streams serves
		// nothing, and QUIC state is too dear to leave unbounded.
		if l.HTTP3MaxStreams < 1 {
			d.report(p+".http3_max_streams", "%d: must be at least 1 (default %d)", l.HTTP3MaxStreams, defaultHTTP3MaxStreams)
		}
		if l.HTTP3MaxConnections < 1 {
			d.report(p+".http3_max_connections", "%d: must be at least 1 (default %d)", l.HTTP3MaxConnections, defaultHTTP3MaxConnections)
		}
		if l.H2C && (hasCert || hasKey || l.TLS.ACME != nil) {
			d.report(p+".h2c", "h2c is HTTP/2 without TLS and cannot be used with tls (a TLS listener offers h2 by ALPN already)")
		}
		// net/http adds 4 KiB to the limit and HTTP/2 announces it as a
		// 32-bit setting: past this it overflows and refuses every
		// request. No real header needs more.
		if l.MaxHeaderBytes > maxHeaderBytes {
			d.report(p+".max_header_bytes", "%s: at most %s", l.MaxHeaderBytes, Size(maxHeaderBytes))
		}
	}
	return binds
}

// checkFile reports a named file that cannot be used, now rather than
// when the first connection needs it, and whether it can be read (false
// also when no file is named).
func checkFile(d *decoder, path, file string) bool {
	if file == "" {
		return false
	}
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		d.report(path, "%v", err)
		return false
	case !fi.Mode().IsRegular():
		d.report(path, "%q is not a regular file", file)
		return false
	}
	// A file the gateway's user may not read (a key left readable by
	// root only, say) fails here rather than at start.
	f, err := os.Open(file)
	if err != nil {
		d.report(path, "%v", err)
		return false
	}
	f.Close()
	return true
}

func validateAdmin(c *Config, d *decoder, binds []bind) {
	if a := c.Admin.Address; a != AdminOff {
		const p = "admin.address"
		host, port, err := parseBind(a)
		if err != nil {
			d.report(p, "invalid address %q: %v (want host:port, e.g. 127.0.0.1:9090, or \"off\")", a, err)
		} else {
			b := bind{path: p, addr: a, host: host, port: port}
			reportConflict(d, b, binds)
			binds = append(binds, b)
			if !isLoopback(host) && c.Admin.Token == "" {
				d.report(p, "%q is reachable from other hosts; set admin.token to require authentication, or listen on 127.0.0.1", a)
			}
		}
	}
	if p := c.Admin.PathPrefix; p != "" && p != "/" {
		switch {
		case !strings.HasPrefix(p, "/"):
			d.report("admin.path_prefix", "%q must start with \"/\" (e.g. /ops)", p)
		case strings.HasSuffix(p, "/"):
			d.report("admin.path_prefix", "%q must not end with \"/\" (e.g. /ops)", p)
		case strings.ContainsAny(p, "?#% \t") || strings.Contains(p, "//") || slices.Contains(strings.Split(p, "/"), "..") || slices.Contains(strings.Split(p, "/"), "."):
			d.report("admin.path_prefix", "%q must be a clean path of plain segments (e.g. /ops)", p)
		}
	}
	// The health listener needs no token on any address: it serves
	// only /healthz and /readyz.
	if a := c.Admin.HealthAddress; a != "" {
		const p = "admin.health_address"
		host, port, err := parseBind(a)
		if err != nil {
			d.report(p, "invalid address %q: %v (want host:port, e.g. :9091)", a, err)
			return
		}
		reportConflict(d, bind{path: p, addr: a, host: host, port: port}, binds)
	}
}

// reportConflict reports b if it could not be bound beside one of binds.
func reportConflict(d *decoder, b bind, binds []bind) {
	for _, o := range binds {
		if b.conflicts(o) {
			d.report(b.path, "%q conflicts with %s %q (line %d)", b.addr, o.path, o.addr, d.line(o.path))
			return
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// ParsePrefix reads a trusted_proxies entry: a CIDR, or one address as a
// prefix of its full length. IPv4-mapped IPv6 addresses are unmapped, so
// they match the IPv4 peers net/http reports.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateAccessLog checks the format, and that a log file's directory
// exists, so a typo fails at load rather than at the first request.
func validateAccessLog(c *Config, d *decoder) {
	oneOf(d, "access_log.format", c.AccessLog.Format, "json", "text")
	switch out := c.AccessLog.Output; out {
	case "stdout", "stderr":
	default:
		dir := path.Dir(out)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			d.report("access_log.output", "invalid value %q (want stdout, stderr or a file in an existing directory)", out)
		} else if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
			d.report("access_log.output", "%q is not a regular file", out)
		}
	}
}

// oneOf reports value at path unless it is one of options.
func oneOf(d *decoder, path, value string, options ...string) bool {
	if slices.Contains(options, value) {
		return true
	}
	d.report(path, "invalid value %q (want %s)", value, orList(options))
	return false
}

// orList writes options as "a, b or c".
func orList(options []string) string {
	if len(options) < 2 {
		return strings.Join(options, "")
	}
	return strings.Join(options[:len(options)-1], ", ") + " or " + options[len(options)-1]
}

func validateUpstreams(c *Config, d *decoder) {
	if len(c.Upstreams) == 0 {
		d.report("upstreams", "no upstreams (want at least one, e.g. app: {targets: [http://127.0.0.1:9000]})")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		u := c.Upstreams[name]
		p := keyPath("upstreams", name)
		if !isName(name) {
			d.report(p, "invalid upstream name (use letters, digits, \"-\", \"_\" and \".\")")
		}

		if len(u.Targets) == 0 {
			d.report(p+".targets", "no targets (want at least one URL, e.g. http://127.0.0.1:9000)")
		}
		// The protocol name, and the targets' schemes, hosts and
		// agreement with the protocol, are packages proxy's and
		// balance's to check (see Check).
		for i, t := range u.Targets {
			if err := checkTarget(t); err != nil {
				tp := indexPath(p+".targets", i)
				d.report(tp, "%v", err)
				// One problem a target: what the packages would find
				// in it is left out (see Reporter.Report).
				d.bad[tp] = true
			}
		}

		switch u.Balance {
		case "round_robin", "least_requests":
			if u.HashOn != "" {
				d.report(p+".hash_on", "only used with balance: hash (balance is %s)", u.Balance)
			}
		case "hash":
			if u.HashOn == "" {
				d.report(p+".hash_on", "missing; balance hash needs hash_on: path, header:NAME or cookie:NAME")
			}
			// Its value is package balance's to check (see Check).
		}
		// Any other balance is package balance's to report (see Check).

		// Negative counts (max_conns_per_target, max_idle_per_target,
		// health_check.max_fails) are packages proxy's and balance's to
		// report (see Check).

		hc := u.HealthCheck
		hp := p + ".health_check"
		// The path itself is package balance's to check (see Check).
		if hc.Path != "" {
			if hc.Interval <= 0 {
				d.report(hp+".interval", "must be positive when path enables active checks")
			}
			if hc.Timeout <= 0 {
				d.report(hp+".timeout", "must be positive when path enables active checks")
			}
		}
		checkFile(d, p+".tls.ca_file", u.TLS.CAFile)
	}
}

// checkTarget checks the text of a target, which is to be a base URL,
// scheme://host[:port][/]: that it parses, and has no user info, query,
// fragment, path or port out of range. Paths are refused rather than
// half supported: the request path is passed through unchanged. The
// scheme (http or https) and the host are package balance's to check
// (see Check), as the URL package gives them; a target without them is
// left to it.
//
// A target without a scheme ("127.0.0.1:3000") is refused, with the URL
// it probably meant: whether the upstream speaks http or https is for
// the file to say, not for the gateway to guess. (gateway proxy --to
// takes one as http://, and its help says so.)
func checkTarget(t string) error {
	if !strings.Contains(t, "://") && t != "" {
		if u, err := url.Parse("http://" + t); err == nil && u.Hostname() != "" && checkTargetText(t, u) == nil {
			return fmt.Errorf("%q: no scheme (did you mean http://%s?)", t, t)
		}
	}
	u, err := url.Parse(t)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL %q: %v", t, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil // package balance's to report
	}
	return checkTargetText(t, u)
}

// checkTargetText checks what url.Parse accepts in t, as u, and a
// target cannot have.
func checkTargetText(t string, u *url.URL) error {
	switch {
	case u.User != nil:
		return fmt.Errorf("%q: user info is not supported in targets", t)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("%q: a target cannot have a query", t)
	case u.Fragment != "" || strings.Contains(t, "#"):
		return fmt.Errorf("%q: a target cannot have a fragment", t)
	case u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q: a target cannot have a path; requests keep their own path", t)
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return fmt.Errorf("%q: port %q is not a number from 0 to 65535", t, p)
		}
	}
	return nil
}

func validateRoutes(c *Config, d *decoder) {
	if len(c.Routes) == 0 {
		d.report("routes", "no routes (want at least one, e.g. - {path: /, upstream: app})")
	}
	defined := strings.Join(slices.Sorted(maps.Keys(c.Upstreams)), ", ")
	if defined == "" {
		defined = "none"
	}
	names := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)

		// The name is the route's identity to the cache (its key rules
		// for invalidation and purge), to metrics and to the logs: two
		// routes sharing one would take each other's place there.
		if k, dup := names[r.Name]; dup {
			other := indexPath("routes", k)
			d.report(p+".name", "%q is already the name of %s (line %d)", r.Name, other, d.line(other))
		} else {
			names[r.Name] = i
		}

		switch _, ok := c.Upstreams[r.Upstream]; {
		case r.Composite != nil:
			// Its parts are requests to other routes; see validateComposite.
		case r.Upstream == "":
			d.report(p+".upstream", "missing (defined: %s)", defined)
		case !ok:
			d.report(p+".upstream", "unknown upstream %q (defined: %s)", r.Upstream, defined)
		}

		switch {
		case !strings.HasPrefix(r.Path, "/"):
			d.report(p+".path", "%q must start with \"/\"", r.Path)
		case strings.ContainsAny(r.Path, "?#"):
			d.report(p+".path", "%q: a path prefix cannot hold \"?\" or \"#\"", r.Path)
		case r.Composite == nil && strings.ContainsAny(r.Path, "{}"):
			d.report(p+".path", "%q: {name} segments are only for composite routes", r.Path)
		}

		for j, h := range r.Hosts {
			h = strings.ToLower(h)
			if err := checkHost(h); err != nil {
				d.report(indexPath(p+".hosts", j), "%v", err)
			}
			r.Hosts[j] = h
		}
		for j, m := range r.Methods {
			if !httpguts.ValidHeaderFieldName(m) {
				d.report(indexPath(p+".methods", j), "invalid method %q", m)
			}
			r.Methods[j] = strings.ToUpper(m)
		}
		if r.Composite != nil {
			validateComposite(d, p, r)
		}
	}
}

// validateComposite checks what a composite route leaves out: an
// upstream, and methods other than GET and HEAD. Its path pattern and
// parts are package batch's to check (see Check).
func validateComposite(d *decoder, p string, r *Route) {
	if r.Upstream != "" {
		d.report(p+".upstream", "a composite route has no upstream (its parts are requests to other routes)")
	}
	if r.StripPrefix {
		d.report(p+".strip_prefix", "a composite route has no upstream to strip the prefix for")
	}
	if r.Cache.Enabled {
		d.report(p+".cache.enabled", "a composite response is never stored; its parts are cached on their own routes")
	}
	for j, m := range r.Methods {
		if m != "GET" && m != "HEAD" {
			d.report(indexPath(p+".methods", j), "%s: a composite route answers GET and HEAD only", m)
		}
	}
}

// validateBatch checks the batch section, enabled or not, for values
// the file may not give: zeros, which package batch would take for its
// defaults. The rest, negative counts included, is package batch's to
// check.
func validateBatch(c *Config, d *decoder) {
	b := &c.Batch
	if b.MaxItems == 0 {
		d.report("batch.max_items", "%d: must be at least 1", b.MaxItems)
	}
	if b.Concurrency == 0 {
		d.report("batch.concurrency", "%d: must be at least 1", b.Concurrency)
	}
	if b.MaxBodySize == 0 {
		d.report("batch.max_body_size", "must be positive")
	}
	if b.MaxResponseSize == 0 {
		d.report("batch.max_response_size", "must be positive")
	}
	if b.MaxTotalResponseSize == 0 {
		d.report("batch.max_total_response_size", "must be positive (the item response bodies of one batch together)")
	}
}

// checkHost accepts a lowercased host name, IP address, or "*." and a
// host name. The port is not part of the match.
func checkHost(h string) error {
	const want = "want a host such as example.com or *.example.com"
	if h == "" {
		return fmt.Errorf("empty host (%s)", want)
	}
	if strings.HasPrefix(h, "[") {
		a, err := netip.ParseAddr(strings.TrimSuffix(h[1:], "]"))
		if err != nil || !strings.HasSuffix(h, "]") || !a.Is6() {
			return fmt.Errorf("invalid host %q (%s, or an IPv6 address in brackets without a port)", h, want)
		}
		return nil
	}
	if strings.Contains(h, ":") {
		return fmt.Errorf("invalid host %q: hosts match without the port (%s)", h, want)
	}
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("invalid host %q: only a leading \"*.\" wildcard is allowed", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("invalid host %q: empty label (%s)", h, want)
		}
		for _, c := range []byte(label) {
			if c >= 0x80 {
				return fmt.Errorf("invalid host %q: write international names in their xn-- form", h)
			}
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("invalid host %q (%s)", h, want)
			}
		}
	}
	return nil
}

// validateCache checks each route's cache section, enabled or not: a
// setting that is wrong now would only fail later, when caching is
// turned on. The sizes and the key lists are package cache's to check.
func validateCache(c *Config, d *decoder) {
	for i, r := range c.Routes {
		rc := r.Cache
		if rc.Enabled && rc.LockTimeout <= 0 {
			d.report(indexPath("routes", i)+".cache.lock_timeout", "must be positive when caching is enabled (requests for one key wait at most this long for a fetch in progress)")
		}
		if f := rc.TargetedField; f != "" && (!httpguts.ValidHeaderFieldName(f) || http.CanonicalHeaderKey(f) == "Cache-Control") {
			// Cache-Control is what a targeted field stands in for; its
			// syntax is not a Structured Fields Dictionary.
			d.report(indexPath("routes", i)+".cache.targeted_field", "%q: want a field name other than Cache-Control, such as Gateway-Cache-Control", f)
		}
		if rc.Slice > 0 && c.Cache.MaxObjectSize > 0 && rc.Slice > c.Cache.MaxObjectSize {
			// Each slice is stored as one response: a slice larger
			// than any stored response would never be kept.
			d.report(indexPath("routes", i)+".cache.slice", "%s: at most cache.max_object_size (%s)", rc.Slice, c.Cache.MaxObjectSize)
		}
	}
	if c.Cache.MaxObjectSize == 0 {
		d.report("cache.max_object_size", "must be positive (responses larger than it are not stored)")
	}
}

// validateRouteWebSocket checks route i's websocket section. A cap on a
// route whose upstream speaks only HTTP/2 is a mistake worth reporting:
// HTTP/2 has no Upgrade, so that route carries no WebSockets. (Only the
// cap: the idle timeout always has a value, and a dumped config must
// load again.)
func validateRouteWebSocket(c *Config, d *decoder, i int) {
	r := c.Routes[i]
	p := indexPath("routes", i) + ".websocket.max_connections"
	n := r.WebSocket.MaxConnections
	if n < 0 {
		d.report(p, "%d: must not be negative", n)
		return
	}
	if u, ok := c.Upstreams[r.Upstream]; ok && n > 0 && (u.Protocol == "h2" || u.Protocol == "h2c") {
		d.report(p, "upstream %q speaks only HTTP/2 (protocol %s), which cannot carry WebSocket upgrades; use protocol http1 or auto", r.Upstream, u.Protocol)
	}
}
