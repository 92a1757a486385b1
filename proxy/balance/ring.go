package balance

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// vnodes is how many points each target gets on the ring. With one point
// per target the arcs, and so the load, would differ by large factors;
// 160 points bring the spread to within about ten percent.
const vnodes = 160

// ring is a consistent-hash ring. A key belongs to the first point at or
// after its hash. Each target's points depend on nothing but its own URL,
// so adding or removing a target moves only the keys on that target's
// arcs, which is what keeps caches and sessions on the other targets warm.
type ring struct {
	points []uint64 // sorted
	owners []int32  // owners[i] indexes the pool's targets for points[i]
}

func buildRing(targets []*Target) ring {
	type point struct {
		hash  uint64
		owner int32
	}
	pts := make([]point, 0, len(targets)*vnodes)
	for i, t := range targets {
		for v := range vnodes {
			pts = append(pts, point{xxhash.Sum64String(t.name + "#" + strconv.Itoa(v)), int32(i)})
		}
	}
	// Ordering collisions by URL rather than by configuration index keeps
	// the ring the same whatever order the targets are listed in.
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return strings.Compare(targets[a.owner].name, targets[b.owner].name)
	})
	r := ring{points: make([]uint64, len(pts)), owners: make([]int32, len(pts))}
	for i, pt := range pts {
		r.points[i], r.owners[i] = pt.hash, pt.owner
	}
	return r
}

// pick returns the owner of key or, when that target is skipped or
// unhealthy, the next healthy one clockwise. Walking on (rather than
// rehashing) sends a down target's keys to its ring neighbours and brings
// them back unchanged when it recovers.
func (r *ring) pick(targets []*Target, key string, skip []*Target) (*Target, bool) {
	n := len(r.points)
	i, _ := slices.BinarySearch(r.points, xxhash.Sum64String(key))
	var now int64
	last := int32(-1)
	for range n {
		if i == n {
			i = 0
		}
		o := r.owners[i]
		i++
		if o == last {
			continue
		}
		last = o
		if t := targets[o]; !skipped(skip, t) {
			if t.inRotation() {
				return t, false
			}
			if ok, probe := t.take(&now); ok {
				return t, probe
			}
		}
	}
	return nil, false
}

type keyKind uint8

const (
	keyPath keyKind = iota
	keyHeader
	keyCookie
)

// keySource extracts the hash key from a request.
type keySource struct {
	kind keyKind
	name string // canonical header name or cookie name
}

// value returns the request's key, or "" when it has none.
func (k keySource) value(r *http.Request) string {
	if r == nil {
		return ""
	}
	switch k.kind {
	case keyHeader:
		return r.Header.Get(k.name)
	case keyCookie:
		return cookieValue(r.Header, k.name)
	default:
		if r.URL == nil {
			return ""
		}
		return r.URL.Path
	}
}

// cookieValue finds the first cookie called name. http.Request.Cookie
// would parse and allocate every cookie of the request just to find one.
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v != "" {
				return v
			}
		}
	}
	return ""
}
