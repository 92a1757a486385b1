package balance_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"gateway/internal/fielderr"
	"gateway/proxy/balance"
)

func breakerPool(t *testing.T, n int, open time.Duration, policy string) *balance.Pool {
	t.Helper()
	return newPool(t, balance.Options{
		Targets: targetURLs(n),
		Policy:  policy,
		Breaker: &balance.BreakerOptions{FailureRatio: 0.5, MinRequests: 4, Window: time.Minute, OpenTimeout: open, HalfOpenRequests: 1},
	})
}

// acquireFor acquires until target want is picked (bounded) and returns
// its admission; the other targets' admissions end in success.
func acquireFor(t *testing.T, p *balance.Pool, want *balance.Target) balance.Admission {
	t.Helper()
	for range 10 {
		tg, a := p.Acquire(get("/"))
		if tg == want {
			return a
		}
		a.Done(balance.Success)
	}
	t.Fatalf("target %s never picked", want.URL)
	return balance.Admission{}
}

func waitState(t *testing.T, p *balance.Pool, i int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.BreakerStates()[i].State != want {
		if time.Now().After(deadline) {
			t.Fatalf("target %d: breaker %s; want %s", i, p.BreakerStates()[i].State, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBreakerSkipsOpenTarget: failures at the ratio open a target's
// breaker once MinRequests requests are done; every policy then skips
// it, and its half-open probe is let through alone.
func TestBreakerSkipsOpenTarget(t *testing.T) {
	for _, policy := range []string{balance.PolicyRoundRobin, balance.PolicyLeastRequests} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			// Long enough that the checks of the open state run
			// before it ends, even on a loaded machine.
			p := breakerPool(t, 2, 500*time.Millisecond, policy)
			bad := p.Targets()[0]
			// Two successes and two failures: half, at the ratio.
			for _, o := range []balance.Outcome{balance.Success, balance.Failure, balance.Success} {
				acquireFor(t, p, bad).Done(o)
			}
			if s := p.BreakerStates()[0]; s.State != balance.BreakerClosed || s.Requests != 3 || s.Failures != 1 {
				t.Fatalf("before the fourth: got %+v; want closed, 3 requests, 1 failure", s)
			}
			acquireFor(t, p, bad).Done(balance.Failure)
			if s := p.BreakerStates()[0]; s.State != balance.BreakerOpen || s.Opened != 1 {
				t.Fatalf("got %+v; want open once", s)
			}
			for range 20 {
				tg, a := p.Acquire(get("/"))
				if tg == bad {
					t.Fatalf("open target picked")
				}
				a.Done(balance.Success)
			}
			if bad.Healthy() || !p.Healthy() {
				t.Errorf("got open target healthy %v, pool %v; want false, true", bad.Healthy(), p.Healthy())
			}

			waitState(t, p, 0, balance.BreakerHalfOpen)
			probe := acquireFor(t, p, bad)
			// While the probe is out, the target takes nothing else.
			for range 10 {
				tg, a := p.Acquire(get("/"))
				if tg == bad {
					t.Fatalf("second request admitted to a half-open target with one probe")
				}
				a.Done(balance.Success)
			}
			// A probe the client abandoned says nothing: another goes.
			probe.Done(balance.Ignored)
			acquireFor(t, p, bad).Done(balance.Success)
			if s := p.BreakerStates()[0]; s.State != balance.BreakerClosed {
				t.Errorf("after a good probe: got %+v; want closed", s)
			}
		})
	}
}

// TestBreakerAllOpen: with every target open, Acquire and Pick find
// none; the hash policy keeps its affinity once the target closes.
func TestBreakerAllOpen(t *testing.T) {
	p := newPool(t, balance.Options{
		Targets: targetURLs(1),
		Breaker: &balance.BreakerOptions{MinRequests: 2, OpenTimeout: time.Hour},
	})
	tg := p.Targets()[0]
	for range 2 {
		acquireFor(t, p, tg).Done(balance.Failure)
	}
	if got, _ := p.Acquire(get("/")); got != nil {
		t.Errorf("Acquire: got %s; want nil with the only target open", got.URL)
	}
	if got := p.Pick(get("/"), nil); got != nil {
		t.Errorf("Pick: got %s; want nil with the only target open", got.URL)
	}
	if st := tg.Status(); st.Healthy || st.Breaker != balance.BreakerOpen {
		t.Errorf("status: got %+v; want unhealthy, breaker open", st)
	}
	// An open breaker is no panic candidate: failing fast is its point.
	if w := p.RetryAfter(); w <= 59*time.Minute || w > time.Hour {
		t.Errorf("RetryAfter: got %v; want the open timeout's remainder, just under 1h", w)
	}
}

// TestBreakerPanicSkipsOpen: with every target out of rotation, the
// panic pick passes over targets whose breaker is open.
func TestBreakerPanicSkipsOpen(t *testing.T) {
	clock := newClock()
	p := newPool(t, balance.Options{
		Targets:  targetURLs(2),
		MaxFails: 1, CoolDown: time.Hour, Now: clock.Now,
		Breaker: &balance.BreakerOptions{MinRequests: 1, OpenTimeout: time.Hour},
	})
	ts := p.Targets()
	acquireFor(t, p, ts[0]).Done(balance.Failure) // opens 0's breaker
	ts[0].ReportFailure()
	clock.Advance(time.Second)
	ts[1].ReportFailure() // 1 is out for passive health only, and failed last
	for i := range 10 {
		if got, a := p.Acquire(get("/")); got != ts[1] {
			t.Fatalf("acquire %d: got %v; want %s, the only one not open", i, got, ts[1].URL)
		} else {
			a.Done(balance.Ignored)
		}
	}
	if p.RetryAfter() != 0 {
		t.Errorf("RetryAfter: got %v; want 0 with a breaker closed", p.RetryAfter())
	}
}

// TestBreakerIgnoredOutcomes: canceled requests neither trip nor count.
func TestBreakerIgnoredOutcomes(t *testing.T) {
	p := breakerPool(t, 1, time.Hour, "")
	tg := p.Targets()[0]
	for range 10 {
		acquireFor(t, p, tg).Done(balance.Ignored)
	}
	if s := p.BreakerStates()[0]; s.State != balance.BreakerClosed || s.Requests != 0 {
		t.Errorf("got %+v; want closed with nothing counted", s)
	}
}

func TestBreakerOptions(t *testing.T) {
	for _, o := range []balance.BreakerOptions{{FailureRatio: 1.5}, {FailureRatio: -1}, {OpenTimeout: -time.Second}} {
		if _, err := balance.New(balance.Options{Targets: targetURLs(1), Breaker: &o}); err == nil {
			t.Errorf("New with breaker %+v: got no error; want one", o)
		}
	}
	p := newPool(t, balance.Options{Targets: targetURLs(1)})
	if p.BreakerStates() != nil || p.Targets()[0].Status().Breaker != "" {
		t.Errorf("without breakers: got states %v; want none", p.BreakerStates())
	}
	if _, ok := p.Targets()[0].Admit(); !ok {
		t.Errorf("Admit without a breaker: refused; want admitted")
	}
}

// New refuses a failure ratio out of range on its own, not only through
// the config file's checks; 0 stands for the default.
func TestNewRejectsFailureRatio(t *testing.T) {
	for _, r := range []float64{-0.1, 1.5, math.NaN()} {
		p, err := balance.New(balance.Options{Targets: targetURLs(1), Breaker: &balance.BreakerOptions{FailureRatio: r}})
		if err == nil {
			p.Close()
			t.Fatalf("FailureRatio %v: New succeeded", r)
		}
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != "Breaker.FailureRatio" {
			t.Errorf("FailureRatio %v: got %v; want a problem with FailureRatio", r, err)
		}
	}
	for _, r := range []float64{0, 0.01, 1} {
		p, err := balance.New(balance.Options{Targets: targetURLs(1), Breaker: &balance.BreakerOptions{FailureRatio: r}})
		if err != nil {
			t.Fatalf("FailureRatio %v: %v", r, err)
		}
		p.Close()
	}
}
