package redistier

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gateway/cache"
	"gateway/internal/redistest"
)

// redisTLSACL starts a Redis that speaks TLS only, with an ACL user gw
// (password secret) allowed the keys and channels under the default
// KeyPrefix and nothing else, and the default user off: a tier that
// talks to it needs the CA, the user and the password.
func redisTLSACL(t *testing.T) *redistest.Server {
	t.Helper()
	srv := redistest.StartTLS(t)
	srv.Do(t, "ACL", "SETUSER", "gw", "on", ">secret", "~"+DefaultKeyPrefix+"*", "&"+DefaultKeyPrefix+"*", "+@all")
	srv.Do(t, "ACL", "SETUSER", "default", "off")
	srv.Auth("gw", "secret")
	return srv
}

func tlsACLConfig(srv *redistest.Server) Config {
	cfg := testConfig("rediss://" + srv.Addr)
	cfg.TLS = srv.TLSConfig() // RootCAs: the test CA only
	cfg.Username, cfg.Password = "gw", "secret"
	return cfg
}

func TestTLSACL(t *testing.T) {
	leaks(t)
	srv := redisTLSACL(t)
	a := openTier(t, tlsACLConfig(srv), true)
	b := openTier(t, tlsACLConfig(srv), true)

	// Both tiers are connected as gw, over TLS (the server has no plain
	// port to be connected to otherwise).
	if n := strings.Count(srv.Do(t, "CLIENT", "LIST"), " user=gw "); n < 3 {
		t.Errorf("%d connections as user gw; want the two tiers' and this one", n)
	}

	p := primary("tls.example", "/page")
	set(t, a.Tier, p, newEntry("over tls", nil, "", []string{"t"}, time.Now()))
	o := get(t, b.Tier, p)
	if o == nil || len(o.Variants) != 1 || string(o.Variants[0].Body) != "over tls" {
		t.Fatalf("Get on the second tier: %+v; want the first's entry", o)
	}

	if _, err := a.PurgeTag(context.Background(), "t", false); err != nil {
		t.Fatalf("PurgeTag: %v", err)
	}
	select {
	case ev := <-b.applied:
		if ev != (purgeEvent{cache.PurgeKindTag, "t", false}) {
			t.Fatalf("OnPurge(%v, %q, %v); want (tag, t, false)", ev.kind, ev.value, ev.soft)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second tier's OnPurge was not called")
	}
	if o := get(t, b.Tier, p); o != nil {
		t.Errorf("Get after a hard purge of its tag: %d variants; want a miss", len(o.Variants))
	}
	if st := b.TierStats(); st.State != "up" || st.Hits < 1 || st.PurgesReceived != 1 {
		t.Errorf("second tier: %+v; want up, a hit, one purge received", st)
	}
}

// TestTLSACLRefused: a tier that cannot pass the server's TLS or ACL
// never comes up, fails its operations at once, and never logs the
// password, however it was refused.
func TestTLSACLRefused(t *testing.T) {
	leaks(t)
	srv := redisTLSACL(t)
	const wrong = "not-the-password-xyzzy"
	cases := []struct {
		name string
		cfg  func(Config) Config
	}{
		{"wrong password", func(c Config) Config { c.Password = wrong; return c }},
		{"default user", func(c Config) Config { c.Username, c.Password = "", wrong; return c }},
		{"plain TCP to the TLS port", func(c Config) Config { c.Addrs, c.TLS = []string{srv.Addr}, nil; return c }},
		{"CA not trusted", func(c Config) Config { c.TLS = nil; return c }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := c.cfg(tlsACLConfig(srv))
			tier, err := Open(cfg, Options{Logger: logger, OnPurge: func(cache.PurgeKind, string, bool) {
				t.Error("OnPurge called on a tier that never connected")
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer tier.Close()
			// Two refused attempts (the first is a warning, the retries
			// debug): it keeps trying, and keeps failing.
			waitFor(t, "two refused connection attempts", 20*time.Second, func() bool {
				return strings.Count(logs.String(), "cannot connect") >= 2
			})
			if st := tier.TierStats(); st.State != "down" {
				t.Fatalf("state %q after refused attempts; want down", st.State)
			}
			start := time.Now()
			if _, err := tier.Get(context.Background(), primary("refused.example", "/")); !errors.Is(err, ErrDown) {
				t.Errorf("Get: %v; want ErrDown", err)
			}
			if ok, _ := tier.Set(context.Background(), primary("refused.example", "/"), newEntry("x", nil, "", nil, time.Now())); ok {
				t.Error("Set queued on a tier that is down")
			}
			if _, err := tier.PurgeAll(context.Background(), false); !errors.Is(err, ErrDown) {
				t.Errorf("PurgeAll: %v; want ErrDown", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("operations on a down tier took %v; want at once", d)
			}
			if err := tier.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			l := logs.String()
			for _, secret := range []string{wrong, "secret"} {
				if strings.Contains(l, secret) {
					t.Errorf("the logs show %q:\n%s", secret, l)
				}
			}
			t.Logf("refused as: %s", firstLine(l, "cannot connect"))
		})
	}
	// The refused tiers wrote nothing; the server is still fine for one
	// that gets everything right.
	if got := srv.Do(t, "DBSIZE"); got != "0" {
		t.Errorf("DBSIZE %s after refused tiers; want 0", got)
	}
	good := openTier(t, tlsACLConfig(srv), true)
	if _, err := good.Get(context.Background(), primary("refused.example", "/")); err != nil {
		t.Fatal(err)
	}
}

func firstLine(s, with string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, with) {
			return l
		}
	}
	return ""
}
