package balance_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"gateway/proxy/balance"
)

// coolDownLeft is how long tg's cool-down has to run on clock; 0 when
// tg is not cooling down.
func coolDownLeft(tg *balance.Target, clock *fakeClock) time.Duration {
	d := tg.Status().DownUntil
	if d.IsZero() {
		return 0
	}
	return d.Sub(clock.Now())
}

// TestCoolDownEscalates: the first cool-down is BaseCoolDown (or
// cool_down, if shorter), each failed probe doubles it up to cool_down,
// and a success starts over from the first.
func TestCoolDownEscalates(t *testing.T) {
	for _, tc := range []struct {
		coolDown time.Duration
		want     []time.Duration
	}{
		{10 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{3 * time.Second, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{500 * time.Millisecond, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}},
		{0, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, balance.DefaultCoolDown}},
	} {
		t.Run(tc.coolDown.String(), func(t *testing.T) {
			clock := newClock()
			p := newPool(t, balance.Options{Targets: targetURLs(2), MaxFails: 3, CoolDown: tc.coolDown, Now: clock.Now})
			tg := p.Targets()[0]
			for round := range 2 {
				takeOut(tg, 3)
				for i, want := range tc.want {
					if got := coolDownLeft(tg, clock); got != want {
						t.Fatalf("round %d, cool-down %d: got %v; want %v", round, i+1, got, want)
					}
					clock.Advance(want - time.Nanosecond)
					if tg.Healthy() {
						t.Fatalf("round %d, cool-down %d: healthy before its end", round, i+1)
					}
					clock.Advance(time.Nanosecond)
					if !tg.Healthy() {
						t.Fatalf("round %d, cool-down %d: not half-open at its end", round, i+1)
					}
					if i < len(tc.want)-1 {
						tg.ReportFailure() // the probe fails
					}
				}
				// The probe succeeds: back in rotation, and the next trip
				// starts again from the first cool-down.
				tg.ReportSuccess()
				if st := tg.Status(); !st.Healthy || st.ConsecutiveFails != 0 || !st.DownUntil.IsZero() {
					t.Fatalf("round %d: after a good probe: got %+v; want in rotation", round, st)
				}
			}
		})
	}
}

// TestHalfOpenSingleProbe: once a target's cool-down ends, one pick
// takes it as the probe and no other pick does while the probe is out;
// the probe's outcome decides, and an ignored probe frees the slot.
// Every cool-down lasts cool_down, 1s, so only the probe is under test.
func TestHalfOpenSingleProbe(t *testing.T) {
	for _, policy := range []string{"round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			clock := newClock()
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: policy, HashOn: "path",
				MaxFails: 1, CoolDown: time.Second, Now: clock.Now})
			tg := p.Targets()[0]
			req := func(i int) *http.Request { return get("/p/" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))) }
			takeOut(tg, 1)
			clock.Advance(balance.BaseCoolDown)

			// Probe, fail: out for another cool-down.
			if n := countPicks(p, 600, req, nil)[tg.URL.String()]; n != 1 {
				t.Fatalf("half-open target picked %d times of 600; want 1 (the probe)", n)
			}
			if !tg.Healthy() {
				t.Error("half-open target unhealthy while its probe is out; want healthy (for status and readiness)")
			}
			tg.ReportFailure()
			if got := coolDownLeft(tg, clock); got != time.Second {
				t.Fatalf("after a failed probe: cool-down %v; want 1s", got)
			}
			if n := countPicks(p, 600, req, nil)[tg.URL.String()]; n != 0 {
				t.Fatalf("cooling target picked %d times; want 0", n)
			}

			// An ignored probe (the client left) frees the slot.
			clock.Advance(time.Second)
			var adm balance.Admission
			for i := 0; ; i++ {
				if i == 600 {
					t.Fatal("half-open target never acquired")
				}
				got, a := p.Acquire(req(i))
				if got == tg {
					adm = a
					break
				}
				got.ReportSuccess()
			}
			if n := countPicks(p, 600, req, nil)[tg.URL.String()]; n != 0 {
				t.Fatalf("half-open target picked %d times while its probe is out; want 0", n)
			}
			adm.Done(balance.Ignored)

			// The slot is free again. Probe, succeed: back in rotation for
			// every pick.
			if n := countPicks(p, 600, req, nil)[tg.URL.String()]; n != 1 {
				t.Fatalf("half-open target picked %d times of 600; want 1 (the probe)", n)
			}
			tg.ReportSuccess()
			if n := countPicks(p, 600, req, nil)[tg.URL.String()]; n < 100 {
				t.Errorf("after a good probe: picked %d times of 600; want its share", n)
			}
		})
	}
}

// TestPanicPick: with every target out (cooling down, half-open with
// its probe out, or failing its active check), a first attempt goes to
// the target that failed least recently instead of finding none; a
// retry finds none; the panic pick's success puts its target back.
func TestPanicPick(t *testing.T) {
	for _, policy := range []string{"round_robin", "least_requests", "hash"} {
		t.Run(policy, func(t *testing.T) {
			clock := newClock()
			p := newPool(t, balance.Options{Targets: targetURLs(3), Policy: policy, HashOn: "path",
				MaxFails: 1, CoolDown: time.Hour, Now: clock.Now})
			ts := p.Targets()
			// Out in the order 1, 0, 2: target 1 failed least recently.
			for _, i := range []int{1, 0, 2} {
				takeOut(ts[i], 1)
				clock.Advance(time.Millisecond)
			}
			if p.Healthy() {
				t.Fatal("pool healthy with every target out")
			}
			for i := range 20 {
				if got := p.Pick(get("/p"), nil); got != ts[1] {
					t.Fatalf("pick %d: got %v; want the least recently failed %s", i, got, ts[1].URL)
				}
				if tg, _ := p.Acquire(get("/p")); tg != ts[1] {
					t.Fatalf("acquire %d: got %v; want %s", i, tg, ts[1].URL)
				}
			}
			if got := p.Pick(get("/p"), ts[1]); got != nil {
				t.Errorf("retry: got %s; want nil", got.URL)
			}
			if got, _ := p.Acquire(get("/p"), ts[1]); got != nil {
				t.Errorf("retry acquire: got %s; want nil", got.URL)
			}
			// It fails again: now target 0 is the least recently failed.
			ts[1].ReportFailure()
			if got := p.Pick(get("/p"), nil); got != ts[0] {
				t.Fatalf("after target 1 failed again: got %v; want %s", got, ts[0].URL)
			}
			// The panic pick's success is news: target 0 is back, though
			// its cool-down has most of an hour to run.
			ts[0].ReportSuccess()
			if !ts[0].Healthy() || !p.Healthy() {
				t.Fatal("panic pick's success did not put its target back")
			}
			for i := range 10 {
				if got := p.Pick(get("/p"), nil); got != ts[0] {
					t.Fatalf("pick %d: got %v; want %s, the only one in rotation", i, got, ts[0].URL)
				}
			}
		})
	}

	t.Run("ties take turns", func(t *testing.T) {
		clock := newClock()
		p := newPool(t, balance.Options{Targets: targetURLs(2), Policy: "hash", HashOn: "path",
			MaxFails: 1, CoolDown: time.Hour, Now: clock.Now})
		for _, tg := range p.Targets() {
			takeOut(tg, 1) // at the same instant
		}
		got := countPicks(p, 10, func(int) *http.Request { return get("/same") }, nil)
		for _, u := range urlsOf(p.Targets()) {
			if got[u] != 5 {
				t.Fatalf("panic picks %v; want 5 each", got)
			}
		}
	})

	t.Run("half-open with its probe out", func(t *testing.T) {
		clock := newClock()
		p := newPool(t, balance.Options{Targets: targetURLs(1), MaxFails: 1, CoolDown: 10 * time.Second, Now: clock.Now})
		tg := p.Targets()[0]
		takeOut(tg, 1)
		clock.Advance(balance.BaseCoolDown)
		for i := range 5 {
			if got := p.Pick(get("/"), nil); got != tg {
				t.Fatalf("pick %d: got %v; want the lone target, probe or panic", i, got)
			}
		}
	})

	t.Run("failing active check", func(t *testing.T) {
		a, b := newHealthServer(t, 500), newHealthServer(t, 500)
		p := newPool(t, balance.Options{Targets: []*url.URL{mustURL(a.URL), mustURL(b.URL)},
			HealthPath: "/h", HealthInterval: 20 * time.Millisecond, Now: newClock().Now})
		p.Start()
		waitFor(t, "both checks to fail", func() bool { return !p.Healthy() })
		if got := p.Pick(get("/"), nil); got == nil {
			t.Fatal("got no pick with every check failing; want a panic pick")
		}
		b.status.Store(200)
		tb := p.Targets()[1]
		waitFor(t, "b's check to pass", tb.Healthy)
		for i := range 10 {
			if got := p.Pick(get("/"), nil); got != tb {
				t.Fatalf("pick %d: got %v; want %s, the only one in rotation", i, got, tb.URL)
			}
		}
	})
}
