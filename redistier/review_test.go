package redistier

import (
	"context"
	"strconv"
	"testing"
)

// A lease key without an expiry is taken over, not taken for a lease
// this process holds (PTTL -1 once read as "taken").
func TestLeaseKeyWithoutExpiry(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	p := primary("noexpiry.example", "/")
	lk := a.k.lease(a.k.hash(p))
	srv.Do(t, "SET", lk, "someone-else")
	l, err := a.Lease(context.Background(), p)
	if err != nil || l == nil {
		t.Fatalf("Lease: %v, %v; want the lease, taken over", l, err)
	}
	if v := srv.Do(t, "GET", lk); v != l.(*lease).token {
		t.Errorf("lease key holds %q; want this lease's token %q", v, l.(*lease).token)
	}
	if v, _ := strconv.Atoi(srv.Do(t, "PTTL", lk)); v <= 0 {
		t.Errorf("lease key PTTL %d; want an expiry", v)
	}
	if st := a.TierStats(); st.LeaseTakeovers != 1 {
		t.Errorf("LeaseTakeovers %d; want 1", st.LeaseTakeovers)
	}
	l.Release()
	a.flush(t)
}
