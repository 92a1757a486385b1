// Package jobid is how the job queue tells an observer which job a
// request belongs to (the job a 202 created, or the job an attempt
// runs), without the two importing each other: the queue hands the id
// to the Recorder it finds in the request's context, and the access log
// prints it. The proxy's per-request observation, which the cache's
// outcome already reaches through package outcome's context value, takes
// it too, so observing jobs costs a request no context of its own.
package jobid

import (
	"context"

	"gateway/internal/outcome"
)

// Recorder takes the job id of one request.
type Recorder interface {
	RecordJob(id string)
}

type recorderKey struct{}

// NewContext returns ctx carrying rec.
func NewContext(ctx context.Context, rec Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, rec)
}

// Record hands id to the Recorder in ctx, if any: one given by
// NewContext, or the cache outcome's Recorder when it is one too.
func Record(ctx context.Context, id string) {
	if rec, ok := ctx.Value(recorderKey{}).(Recorder); ok {
		rec.RecordJob(id)
		return
	}
	if rec, ok := outcome.FromContext(ctx).(Recorder); ok {
		rec.RecordJob(id)
	}
}

type attemptKey struct{}

// WithAttempt marks ctx as an attempt of a queued job: a request the
// gateway makes itself on a client's behalf, whose client was already
// counted (rate limits) when the job was accepted.
func WithAttempt(ctx context.Context) context.Context {
	return context.WithValue(ctx, attemptKey{}, true)
}

// IsAttempt reports whether ctx is an attempt of a queued job.
func IsAttempt(ctx context.Context) bool {
	v, _ := ctx.Value(attemptKey{}).(bool)
	return v
}
