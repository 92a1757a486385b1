package app

import (
	"gateway/config"
	"gateway/proxy"
	"gateway/proxy/balance"
)

// Overload protection: the config's rate_limit, concurrency and
// circuit_breaker sections as the proxy's options.

// rateLimitOptions maps a route's rate_limit section; nil when absent.
func rateLimitOptions(rl *config.RouteRateLimit) *proxy.RateLimitOptions {
	if rl == nil {
		return nil
	}
	return &proxy.RateLimitOptions{Rate: float64(rl.Rate), Burst: rl.Burst, Key: rl.Key, MaxKeys: rl.MaxKeys}
}

// concurrencyOptions maps a route's concurrency section.
func concurrencyOptions(c config.RouteConcurrency) proxy.ConcurrencyOptions {
	return proxy.ConcurrencyOptions{MaxInFlight: c.MaxInFlight, Queue: c.Queue, QueueTimeout: c.QueueTimeout.D()}
}

// breakerOptions maps an upstream's circuit_breaker section; nil when
// absent.
func breakerOptions(cb *config.CircuitBreaker) *balance.BreakerOptions {
	if cb == nil {
		return nil
	}
	return &balance.BreakerOptions{
		FailureRatio:     cb.FailureRatio,
		MinRequests:      uint32(cb.MinRequests),
		Window:           cb.Window.D(),
		OpenTimeout:      cb.OpenTimeout.D(),
		HalfOpenRequests: uint32(cb.HalfOpenRequests),
	}
}
