// Package config loads and validates gateway.yaml, the gateway's only
// configuration file.
//
// Load reads the file; Parse does the work on bytes already in memory.
// Both decode strictly: an unknown key, a value of the wrong type, a
// duplicate key or a value that fails validation is reported, and the
// problems in the file are reported at once (the first hundred, by
// line), one per line, in the form
//
//	gateway.yaml:12: routes[1].timeout: invalid duration "5x" (want e.g. 250ms, 30s, 2m)
//
// so an operator can fix the whole file in one pass and an editor can
// jump to each line. The error is an Errors; errors.As gives callers
// the problems one by one as *Error values.
//
// # Environment variables
//
// A scalar value may refer to the environment as ${VAR} or
// ${VAR:-default}; the default is used when VAR is unset or empty, as in
// the shell. ${VAR} with VAR unset is an error rather than an empty
// string, because a missing variable in a deployment is far more often
// a mistake than an intent; write ${VAR:-} to accept empty. "$$" stands
// for a literal "$", and a "$" not followed by "{" or "$" is kept as is.
// Defaults are taken literally (no nested references). Inside flow
// collections ([a, b] or {k: v}) YAML gives braces a meaning of their
// own, so quote a value holding a reference there: ["${HOST}:80"].
// Expansion applies
// to values only, never to keys, and happens after the YAML is parsed,
// so a variable's value is always one plain string: it cannot add keys
// or change the structure, and line numbers in messages stay those of
// the file.
//
// Relative file names (TLS certificates, CA bundles) are relative to the
// gateway's working directory, not to the config file.
//
// Of the module's packages this one imports only cache, compress,
// batch, limit and proxy/balance: it checks cache key, compression,
// batch, composite and rate limit key settings with the code that will
// use them, and takes the rate limit and circuit breaker defaults from
// there. Any other package may depend on it; those five must not.
package config
