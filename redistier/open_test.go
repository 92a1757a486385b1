package redistier

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientOption(t *testing.T) {
	cfg := Config{Addrs: []string{"rediss://cache.internal:6380", "10.0.0.2:6379"}, DialTimeout: 3 * time.Second, Username: "gw", Password: "pw", DB: 2}.WithDefaults()
	o := clientOption(cfg)
	if o.TLSConfig == nil {
		t.Error("rediss:// without Config.TLS: no TLS")
	}
	if strings.Join(o.InitAddress, ",") != "cache.internal:6380,10.0.0.2:6379" {
		t.Errorf("InitAddress %q", o.InitAddress)
	}
	if o.Dialer.Timeout != 3*time.Second || o.ConnWriteTimeout <= 0 || o.Username != "gw" || o.Password != "pw" || o.SelectDB != 2 {
		t.Errorf("dialer %v, write timeout %v, user %q, db %d", o.Dialer.Timeout, o.ConnWriteTimeout, o.Username, o.SelectDB)
	}
	if o.ForceSingleClient || o.Sentinel.MasterSet != "" {
		t.Error("mode auto: forced single or sentinel")
	}
	cfg.Mode, cfg.Addrs = ModeStandalone, []string{"redis://a:1"}
	if o := clientOption(cfg); !o.ForceSingleClient || o.TLSConfig != nil {
		t.Errorf("standalone redis://: single %v, TLS %v", o.ForceSingleClient, o.TLSConfig != nil)
	}
	cfg.Mode, cfg.MasterName = ModeSentinel, "m"
	if o := clientOption(cfg); o.Sentinel.MasterSet != "m" {
		t.Errorf("sentinel: MasterSet %q", o.Sentinel.MasterSet)
	}
}

// syncBuffer is a log sink safe for the tier's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPasswordNeverLogged(t *testing.T) {
	leaks(t)
	srv := redisWithPassword(t, "right-secret")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig(srv.Addr)
	cfg.Password = "wrong-secret"
	bad, err := Open(cfg, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a refused attempt", 10*time.Second, func() bool { return bad.TierStats().State == "down" })
	_ = bad.Close()
	cfg.Password = "right-secret"
	good, err := Open(cfg, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	waitFor(t, "up with the right password", 10*time.Second, func() bool { return good.TierStats().State == "up" })
	if _, err := good.Get(context.Background(), primary("auth.example", "/")); err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, "secret") || !strings.Contains(l, "cannot connect") {
		t.Fatalf("logs show a password, or not the failed attempt:\n%s", l)
	}
}

func TestCloseDrainsWrites(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a, err := Open(testConfig(srv.Addr), Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "up", 10*time.Second, func() bool { return a.TierStats().State == "up" })
	const n = 50
	for i := range n {
		if ok, err := a.Set(context.Background(), primary("drain.example", "/"+string(rune('a'+i%26))+strings.Repeat("x", i)), newEntry("x", nil, "", nil, time.Now())); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.TierStats(); st.Writes != n {
		t.Fatalf("%d of %d writes landed before Close returned (dropped %d)", st.Writes, n, st.WritesDropped)
	}
	if ok, _ := a.Set(context.Background(), primary("drain.example", "/late"), newEntry("x", nil, "", nil, time.Now())); ok {
		t.Error("Set after Close queued")
	}
}
