package dashboard

// ring keeps the newest HistoryLength points, oldest first.
type ring struct {
	buf   []Point // grows to HistoryLength, then is overwritten
	start int     // index of the oldest point once buf is full
}

func (r *ring) add(p Point) {
	if len(r.buf) < HistoryLength {
		r.buf = append(r.buf, p)
		return
	}
	r.buf[r.start] = p
	r.start = (r.start + 1) % HistoryLength
}

// until copies the points up to time t (Unix milliseconds), oldest
// first.
func (r *ring) until(t int64) []Point {
	out := make([]Point, 0, len(r.buf))
	for i := range r.buf {
		p := r.buf[(r.start+i)%len(r.buf)]
		if p.T > t {
			break
		}
		out = append(out, p)
	}
	return out
}

// history is the kept points of the gateway and of each route shown.
type history struct {
	gateway ring
	routes  map[string]*ring
}

// add appends one sample's points. Routes no longer in names (a reload
// removed them) are dropped, so the history is bounded by the
// configured routes.
func (h *history) add(gw Point, routes []RoutePoint, names []string) {
	h.gateway.add(gw)
	if h.routes == nil {
		h.routes = map[string]*ring{}
	}
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	for name := range h.routes {
		if !keep[name] {
			delete(h.routes, name)
		}
	}
	for _, rp := range routes {
		r := h.routes[rp.Route]
		if r == nil {
			r = &ring{}
			h.routes[rp.Route] = r
		}
		r.add(rp.Point)
	}
}

// until copies the history up to time t (Unix milliseconds).
func (h *history) until(t int64) *History {
	out := &History{Gateway: h.gateway.until(t), Routes: make(map[string][]Point, len(h.routes))}
	for name, r := range h.routes {
		out.Routes[name] = r.until(t)
	}
	return out
}
