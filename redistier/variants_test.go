package redistier

import (
	"strconv"
	"testing"
	"time"
)

// A key whose Vary names a header clients choose freely does not grow
// without bound in Redis: every read of it takes all its variants.
func TestVariantsBounded(t *testing.T) {
	leaks(t)
	srv := startRedis(t)
	a := openTier(t, testConfig(srv.Addr), true)
	p := primary("vary.example", "/")
	for i := range 3 * maxVariants {
		set(t, a.Tier, p, newEntry("v"+strconv.Itoa(i), []string{"User-Agent"}, "ua-"+strconv.Itoa(i), nil, time.Now()))
	}
	a.flush(t)
	n, err := srv.TextCmd("HLEN", a.k.object(a.k.hash(p)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(n); got == 0 || got > maxVariants+1 {
		t.Errorf("the key holds %s fields after %d variants; want at most %d", n, 3*maxVariants, maxVariants+1)
	}
	if o := get(t, a.Tier, p); o == nil || len(o.Variants) > maxVariants {
		t.Errorf("read: %+v; want at most %d variants", o, maxVariants)
	}
}
