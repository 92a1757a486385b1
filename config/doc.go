// Package config is the schema and the defaults of gateway.yaml, the
// gateway's only configuration file: it loads it and checks what is
// about the file itself.
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
// # What is checked where
//
// This package checks the file: its syntax and structure (unknown keys,
// types, duplicate keys), environment references, sizes, durations and
// rates, required fields, values the file may not give (an explicit 0
// where 0 has no meaning), and references between sections (a route's
// upstream, conflicting listen addresses, duplicate route names).
//
// Whether a section makes good options for the package that uses it is
// that package's to say, with its Options.Validate (cache, compress,
// batch, limit, proxy, proxy/balance). Package app maps the config to
// those options and passes its Check to Parse or Load; a Check reports
// through a Reporter, which gives it the line of any field path
// (Reporter.Line), whether the file gave a value (Given) or one was
// rejected (Rejected), so its problems read and sort exactly as the
// file's own. Parse without a Check leaves the packages' rules out: the
// gateway loads its config through app.Load and app.Parse.
//
// Of the module's packages this one imports none but gateway/internal
// ones (a test keeps it so). The defaults it shows in gateway.yaml that
// are also a package's own (batch's limits, compression's codings,
// levels and minimum size, the rate limit's key cap, the circuit
// breaker's settings) are written out here, and a test in package app
// keeps them equal to the packages' constants. Any package may depend
// on this one.
package config
