package acme

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/time/rate"
)

// OnDemand lets a name that arrives by SNI get a certificate at its
// first handshake. Without it, anybody could make the gateway ask the
// CA for any name pointed at it (and spend the CA's rate limits), so two
// gates stand before the CA: the operator's Ask endpoint approves the
// name, and at most Burst new certificates are asked for at once,
// refilled at Rate.
type OnDemand struct {
	// Ask is an HTTP(S) URL the gateway GETs with ?domain=NAME added; a
	// 2xx answer approves the name, anything else (or no answer within
	// AskTimeout) refuses it and the handshake fails.
	Ask string
	// AskTimeout bounds the ask (0: 10s).
	AskTimeout time.Duration
	// Rate is new certificates per second (0: 10 a minute), Burst how
	// many at once (0: 10).
	Rate  float64
	Burst int
}

// asker decides on-demand names: the ask endpoint, then the rate.
type asker struct {
	ask    *url.URL
	client *http.Client
	limit  *rate.Limiter
	log    *slog.Logger
}

func newAsker(o *OnDemand, log *slog.Logger) *asker {
	burst, per := o.Burst, o.Rate
	if burst <= 0 {
		burst = 10
	}
	if per <= 0 {
		per = 10.0 / 60
	}
	timeout := o.AskTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	u, _ := url.Parse(o.Ask) // Validate parsed it
	return &asker{
		ask:    u,
		client: &http.Client{Timeout: timeout, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		limit:  rate.NewLimiter(rate.Limit(per), burst),
		log:    log,
	}
}

func (a *asker) close() { a.client.CloseIdleConnections() }

// errRate is a name refused because the rate of new certificates is spent.
var errRate = errors.New("on-demand certificate rate exceeded")

// decide is certmagic's DecisionFunc: a configured name is always
// approved (it is obtained anyway); any other must pass the ask
// endpoint and the rate.
func (m *Manager) decide(ctx context.Context, name string) error {
	if m.configured(name) {
		return nil
	}
	if err := m.ask.approve(ctx, name); err != nil {
		m.log.Info("acme: on-demand certificate refused", "domain", name, "err", err)
		return err
	}
	if !m.ask.limit.Allow() {
		m.log.Warn("acme: on-demand certificate refused", "domain", name, "err", errRate)
		return errRate
	}
	return nil
}

// approve asks the endpoint about name.
func (a *asker) approve(ctx context.Context, name string) error {
	u := *a.ask
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", a.ask.Redacted(), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("ask %s: %s for %q", a.ask.Redacted(), resp.Status, name)
	}
	return nil
}
