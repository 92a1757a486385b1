package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"gateway/batch"
	"gateway/cache"
	"gateway/compress"
	"gateway/internal/fielderr"

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
	oneOf(d, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(d, "log.format", c.Log.Format, "text", "json")
	validateAccessLog(c, d)
	validateUpstreams(c, d)
	validateRoutes(c, d)
	validateCache(c, d)
	validateBatch(c, d)
	for i := range c.Routes {
		validateRouteCompress(d, indexPath("routes", i)+".compress", &c.Routes[i].Compress)
		validateRouteWebSocket(c, d, i)
	}
	validateLimits(c, d) // limits.go
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
		if l.H2C && (hasCert || hasKey) {
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
		protoOK := oneOf(d, p+".protocol", u.Protocol, "http1", "h2", "h2c", "auto")
		for i, t := range u.Targets {
			tp := indexPath(p+".targets", i)
			scheme, err := checkTarget(t)
			switch {
			case err != nil:
				d.report(tp, "%v", err)
			case !protoOK:
			case u.Protocol == "h2" && scheme != "https":
				d.report(tp, "%q: protocol h2 is HTTP/2 over TLS and needs an https target (h2c is HTTP/2 without TLS)", t)
			case u.Protocol == "h2c" && scheme != "http":
				d.report(tp, "%q: protocol h2c is HTTP/2 without TLS and needs an http target (h2 is HTTP/2 over TLS)", t)
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
			} else if err := checkHashOn(u.HashOn); err != nil {
				d.report(p+".hash_on", "%v", err)
			}
		default:
			d.report(p+".balance", "invalid value %q (want round_robin, least_requests or hash)", u.Balance)
		}

		for _, f := range []struct {
			path string
			v    int
		}{
			{p + ".max_conns_per_target", u.MaxConnsPerTarget},
			{p + ".max_idle_per_target", u.MaxIdlePerTarget},
			{p + ".health_check.max_fails", u.HealthCheck.MaxFails},
		} {
			if f.v < 0 {
				d.report(f.path, "%d: must not be negative", f.v)
			}
		}

		hc := u.HealthCheck
		hp := p + ".health_check"
		if hc.Path != "" {
			if !strings.HasPrefix(hc.Path, "/") {
				d.report(hp+".path", "%q must start with \"/\"", hc.Path)
			}
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

// checkTarget accepts a base URL, scheme://host[:port][/], and returns
// its scheme. Paths are refused rather than half supported: the
// request path is passed through unchanged.
func checkTarget(t string) (string, error) {
	u, err := url.Parse(t)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("invalid URL %q: %v", t, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: scheme must be http or https (want e.g. http://127.0.0.1:9000)", t)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q: no host (want e.g. http://127.0.0.1:9000)", t)
	case u.User != nil:
		return "", fmt.Errorf("%q: user info is not supported in targets", t)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%q: a target cannot have a query", t)
	case u.Fragment != "" || strings.Contains(t, "#"):
		return "", fmt.Errorf("%q: a target cannot have a fragment", t)
	case u.Path != "" && u.Path != "/":
		return "", fmt.Errorf("%q: a target cannot have a path; requests keep their own path", t)
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return "", fmt.Errorf("%q: port %q is not a number from 0 to 65535", t, p)
		}
	}
	return u.Scheme, nil
}

func checkHashOn(s string) error {
	if s == "path" {
		return nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && (kind == "header" || kind == "cookie") {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("invalid %s name %q in hash_on %q", kind, name, s)
		}
		return nil
	}
	return fmt.Errorf("invalid value %q (want path, header:NAME or cookie:NAME)", s)
}

func validateRoutes(c *Config, d *decoder) {
	if len(c.Routes) == 0 {
		d.report("routes", "no routes (want at least one, e.g. - {path: /, upstream: app})")
	}
	defined := strings.Join(slices.Sorted(maps.Keys(c.Upstreams)), ", ")
	if defined == "" {
		defined = "none"
	}
	seen := map[string]int{}
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

		key := routeKey(r)
		if k, dup := seen[key]; dup {
			other := indexPath("routes", k)
			d.report(p, "same hosts, path and methods as %s (line %d), so it can never match", other, d.line(other))
		} else {
			seen[key] = i
		}
	}
}

// routeKey identifies what a route matches, independent of the order
// hosts and methods are listed in.
func routeKey(r *Route) string {
	set := func(s []string) string {
		s = slices.Clone(s)
		slices.Sort(s)
		return strings.Join(slices.Compact(s), "\x00")
	}
	p := r.Path
	if r.Composite != nil {
		// A composite route is routed by the prefix before its first
		// {name}.
		if pat, err := batch.ParsePattern(p); err == nil {
			p = pat.Prefix()
		}
	}
	return set(r.Hosts) + "\x01" + p + "\x01" + set(r.Methods)
}

// validateComposite checks a composite route: no upstream, GET and HEAD
// only, a path pattern, and parts whose paths use its parameters.
func validateComposite(d *decoder, p string, r *Route) {
	cp := p + ".composite"
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
	oneOf(d, cp+".on_error", r.Composite.OnError, batch.OnErrorFail, batch.OnErrorOmit)
	var pat *batch.Pattern
	if strings.HasPrefix(r.Path, "/") && !strings.ContainsAny(r.Path, "?#") {
		var err error
		if pat, err = batch.ParsePattern(r.Path); err != nil {
			d.report(p+".path", "%s", strings.TrimPrefix(err.Error(), "path "))
		}
	}
	if len(r.Composite.Parts) == 0 {
		d.report(cp+".parts", "no parts (want at least one, e.g. - {key: profile, path: \"/users/{user}\"})")
	}
	keys := map[string]int{}
	for j, part := range r.Composite.Parts {
		pp := indexPath(cp+".parts", j)
		if err := batch.CheckPartKey(part.Key); err != nil {
			d.report(pp+".key", "%v", err)
		} else if k, dup := keys[part.Key]; dup {
			d.report(pp+".key", "duplicate key %q (also %s)", part.Key, indexPath(cp+".parts", k))
		} else {
			keys[part.Key] = j
		}
		switch {
		case part.Path == "":
			d.report(pp+".path", "missing (want a path such as /users/{user})")
		case pat != nil:
			if _, err := pat.ParseTemplate(part.Path); err != nil {
				d.report(pp+".path", "%s", strings.TrimPrefix(err.Error(), "path "))
			}
		}
	}
}

// validateBatch checks the batch section, enabled or not.
func validateBatch(c *Config, d *decoder) {
	b := &c.Batch
	switch {
	case !strings.HasPrefix(b.Path, "/"):
		d.report("batch.path", "%q must start with \"/\"", b.Path)
	case strings.ContainsAny(b.Path, "?#{}"):
		d.report("batch.path", "%q: the batch path cannot hold \"?\", \"#\", \"{\" or \"}\"", b.Path)
	case path.Clean(b.Path) != b.Path:
		d.report("batch.path", "%q: want a clean path (no \"//\", \".\" or \"..\" segments, no trailing \"/\")", b.Path)
	}
	if b.MaxItems < 1 {
		d.report("batch.max_items", "%d: must be at least 1", b.MaxItems)
	}
	if b.Concurrency < 1 {
		d.report("batch.concurrency", "%d: must be at least 1", b.Concurrency)
	}
	if b.MaxBodySize == 0 {
		d.report("batch.max_body_size", "must be positive")
	}
	if b.MaxResponseSize == 0 {
		d.report("batch.max_response_size", "must be positive")
	}
	const tp, rp = "batch.max_total_response_size", "batch.max_response_size"
	if b.MaxTotalResponseSize == 0 {
		d.report(tp, "must be positive (the item response bodies of one batch together)")
	} else if b.MaxResponseSize > 0 && b.MaxTotalResponseSize < b.MaxResponseSize && !d.bad[rp] {
		// An item's body could be within its own limit and still never
		// fit the batch's.
		where := "the default"
		if d.set[rp] {
			where = "line " + strconv.Itoa(d.line(rp))
		}
		d.report(tp, "%s is smaller than %s %s (%s); want at least one item's largest body", b.MaxTotalResponseSize, rp, b.MaxResponseSize, where)
	}
	seen := map[string]int{}
	for i, h := range b.InheritHeaders {
		ip := indexPath("batch.inherit_headers", i)
		if err := batch.CheckInheritHeader(h); err != nil {
			d.report(ip, "%v", err)
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(h)
		if j, dup := seen[k]; dup {
			d.report(ip, "duplicate header %q (also %s)", h, indexPath("batch.inherit_headers", j))
			continue
		}
		seen[k] = i
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

// validateCache checks the shared cache section against the routes that
// use it, and each route's cache section, enabled or not: a setting
// that is wrong now would only fail later, when caching is turned on.
func validateCache(c *Config, d *decoder) {
	enabled := ""
	for i, r := range c.Routes {
		p := indexPath("routes", i)
		validateRouteCache(d, p+".cache", r.Cache)
		if r.Cache.Enabled && enabled == "" {
			enabled = p + ".cache.enabled"
		}
	}

	const sp, op = "cache.max_size", "cache.max_object_size"
	size, object := c.Cache.MaxSize, c.Cache.MaxObjectSize
	if size == 0 && enabled != "" {
		d.report(sp, "must be positive when a route caches (%s at line %d)", enabled, d.line(enabled))
	}
	if object == 0 {
		d.report(op, "must be positive (responses larger than it are not stored)")
	} else if size > 0 && object > size && !d.bad[sp] {
		where := "the default"
		if d.set[sp] {
			where = "line " + strconv.Itoa(d.line(sp))
		}
		d.report(op, "%s is larger than cache.max_size %s (%s); want at most the whole cache", object, size, where)
	}
}

func validateRouteCache(d *decoder, p string, rc RouteCache) {
	if rc.Enabled && rc.LockTimeout <= 0 {
		d.report(p+".lock_timeout", "must be positive when caching is enabled (requests for one key wait at most this long for a fetch in progress)")
	}
	// Each list is checked alone so the problem is reported at its own
	// field, then all together for anything that spans them.
	lists := []struct {
		field string
		names []string
		opts  func([]string) cache.KeyOptions
	}{
		{"ignore_params", rc.IgnoreParams, func(s []string) cache.KeyOptions { return cache.KeyOptions{IgnoreParams: s} }},
		{"key_headers", rc.KeyHeaders, func(s []string) cache.KeyOptions { return cache.KeyOptions{Headers: s} }},
		{"key_cookies", rc.KeyCookies, func(s []string) cache.KeyOptions { return cache.KeyOptions{Cookies: s} }},
	}
	ok := true
	for _, l := range lists {
		if i, err := firstKeyError(l.names, l.opts); err != nil {
			fp := p + "." + l.field
			if i >= 0 {
				fp = indexPath(fp, i)
			}
			d.report(fp, "%s", keyErrorMsg(err))
			ok = false
		}
	}
	if !ok {
		return
	}
	if _, err := cache.NewKeyer(cache.KeyOptions{IgnoreParams: rc.IgnoreParams, Headers: rc.KeyHeaders, Cookies: rc.KeyCookies}); err != nil {
		d.report(p, "%s", keyErrorMsg(err))
	}
}

// firstKeyError returns the error NewKeyer gives for names and the
// index of the entry to blame: the last of the shortest prefix of names
// that fails (-1 for the list as a whole). NewKeyer checks the entries
// in order, so once a prefix fails every longer one does, and a binary
// search finds it in a few calls however long the list.
func firstKeyError(names []string, opts func([]string) cache.KeyOptions) (int, error) {
	_, err := cache.NewKeyer(opts(names))
	if err == nil {
		return 0, nil
	}
	lo, hi := 0, len(names) // names[:lo] passes; names[:hi] fails with err
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if _, e := cache.NewKeyer(opts(names[:mid])); e != nil {
			hi, err = mid, e
		} else {
			lo = mid
		}
	}
	return hi - 1, err
}

// keyErrorMsg drops the package's own prefix: the field path already
// says the value is part of the cache key.
func keyErrorMsg(err error) string {
	if fs, _ := fielderr.Split(err); len(fs) > 0 {
		return fs[0].Msg
	}
	return strings.TrimPrefix(err.Error(), "cache key: ")
}

// validateRouteCompress checks a route's compress section, enabled or
// not, by building the compressor it describes, and lower-cases the
// encodings and types once they are known to be good.
func validateRouteCompress(d *decoder, p string, rc *RouteCompress) {
	levels := oneOf(d, p+".stream_level", rc.StreamLevel, compressLevels...)
	levels = oneOf(d, p+".cached_level", rc.CachedLevel, compressLevels...) && levels
	if !levels {
		return
	}
	o, err := rc.Options()
	if err == nil {
		_, err = compress.New(o)
	}
	if err == nil {
		for i, e := range rc.Encodings {
			rc.Encodings[i] = strings.ToLower(e)
		}
		for i, t := range rc.Types {
			rc.Types[i] = strings.ToLower(t)
		}
		return
	}
	fields := map[string]string{
		"Codings":     "encodings",
		"StreamLevel": "stream_level",
		"CachedLevel": "cached_level",
		"MinSize":     "min_size",
		"Types":       "types",
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var oe *compress.OptionError
		if !errors.As(e, &oe) {
			d.report(p, "%v", e)
			continue
		}
		fp := p + "." + fields[oe.Field]
		if oe.Index >= 0 {
			fp = indexPath(fp, oe.Index)
		}
		d.report(fp, "%s", oe.Msg)
	}
}

var compressLevels = []string{compress.Fastest.String(), compress.Default.String(), compress.Best.String()}

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
