// Package app puts the gateway together from a config: it is where the
// config is mapped into each package's options and where the pieces are
// connected, so that no other package needs to know of the others.
//
// The mapping is options.go: from each section of the config to the
// options of the package that uses it, and Check, which runs each
// options' Validate when the config is loaded and reports what it finds
// at the file's line and field (config.Reporter), in the form of the
// file's own problems. Load and Parse are config.Load and config.Parse
// with Check; the gateway loads every config through them (run,
// validate, reload), so a problem any package would find is reported
// before anything is served, and each rule lives in one place: the file
// in package config, the options in their package.
//
// An App (app.go) has a small lifecycle: New builds it without binding a
// socket, Listen binds, Serve serves until its context ends or Shutdown
// is called and then drains, and Reload swaps in a new configuration.
// What a config builds below the entrypoints is a generation
// (generation.go): upstreams, routes with their limits, compression and
// cache, the batch endpoint, metrics and the access log (build.go,
// options.go, observe.go). Requests count themselves on the generation
// they started on, so a reload (reload.go, watch.go) swaps generations
// without dropping one, and a retired generation closes when its last
// request ends.
//
// What outlives generations is opened once, in Shared (shared.go): the
// metrics registry and the cache store today, and the shared cache tier,
// the job queue and certificate management next. Every build gets its
// resources from Shared.prepare; one that opens something (the first
// config to cache) keeps it only if its reload succeeds.
//
// The admin listener's endpoints are served by package admin from the
// App, which implements admin.Backend (admin.go). The entrypoints are
// package entrypoint's; upgraded tunnels are registered with a
// proxy.Tunnels that the entrypoints' requests carry.
package app
