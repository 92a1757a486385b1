package config

// A Check validates what this package cannot on its own: that the
// values of a section make good options for the package that uses
// them. The packages own those rules (their Options.Validate), and this
// package imports none of them; package app maps the config to each
// package's options and passes its Check to Parse or Load, so that its
// problems are reported with the file's own, sorted by line.
//
// A Check may read c but must not change it; it runs after the defaults
// are applied and the file's own checks are done, also when those found
// problems, as the file's own checks do.
type Check func(c *Config, r *Reporter)

// Reporter is how a Check reports problems in the form of the file's
// own: "gateway.yaml:12: routes[1].compress.min_size: ...".
type Reporter struct{ d *decoder }

// Report records a problem with the value at path ("routes[1].timeout",
// built with IndexPath and KeyPath). It is dropped when the value at
// path, or at a parent of it, was already rejected, as a derived
// complaint would be noise, and when the very same problem was reported
// already.
func (r *Reporter) Report(path, format string, args ...any) {
	r.d.report(path, format, args...)
}

// Line is the line of path in the file or, for a field the file leaves
// out, of its nearest parent that it has.
func (r *Reporter) Line(path string) int { return r.d.line(path) }

// Given reports whether the file gives path a value, rather than leaving
// it to its default.
func (r *Reporter) Given(path string) bool { return r.d.set[path] }

// Rejected reports whether the value at path was rejected already.
func (r *Reporter) Rejected(path string) bool { return r.d.bad[path] }

// OneOf reports value at path unless it is one of options, with the
// wording of the file's own checks, and whether it is.
func (r *Reporter) OneOf(path, value string, options ...string) bool {
	return oneOf(r.d, path, value, options...)
}

// IndexPath names entry i of the list at parent: "routes[2]".
func IndexPath(parent string, i int) string { return indexPath(parent, i) }

// KeyPath names the entry key of the mapping at parent: "upstreams.app",
// or upstreams["a b"] for a key that is not a plain name.
func KeyPath(parent, key string) string { return keyPath(parent, key) }
