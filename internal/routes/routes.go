// Package routes is the table of one config generation's routes that the
// proxy, the access log and the metrics share: each route's ID, its name,
// and the two IDs the gateway adds to them, None (no route took the
// request) and, when batching is on, Batch (the batching endpoint).
//
// The proxy reports the ID of the route that took a request
// (proxy.Observation.Route); the access log names it and the metrics
// count it by the same Table, built once per generation, so the numbers
// cannot disagree.
package routes

// ID names a route within a Table: None, then the configured routes in
// order from 1 (Of), then Batch when batching is on.
type ID int

// None is the ID of a request that no route took.
const None ID = 0

// Names of the IDs that are not configured routes.
const (
	// NoneName labels requests that matched no route (404, 405).
	NoneName = "(none)"
	// BatchName labels the batching endpoint's requests.
	BatchName = "(batch)"
)

// Of is the ID of the route at index i (from 0) of the configured routes,
// as proxy.Options.Routes lists them.
func Of(i int) ID { return ID(i + 1) }

// Table names the IDs of one generation. The zero value, and a nil
// *Table, has no routes and no batching endpoint.
type Table struct {
	names []string // by ID: NoneName, the routes, BatchName when batching
	batch ID       // None when batching is off
}

// New builds the table of the routes named names, in configured order,
// with a Batch ID when batch is set.
func New(names []string, batch bool) *Table {
	t := &Table{names: make([]string, 0, len(names)+2)}
	t.names = append(t.names, NoneName)
	t.names = append(t.names, names...)
	if batch {
		t.batch = ID(len(t.names))
		t.names = append(t.names, BatchName)
	}
	return t
}

// Len is the number of IDs, None and Batch included: IDs run from 0 to
// Len()-1.
func (t *Table) Len() int {
	if t == nil || len(t.names) == 0 {
		return 1
	}
	return len(t.names)
}

// Name is the name of id; NoneName for None and for an ID the table does
// not hold.
func (t *Table) Name(id ID) string {
	if t == nil || id <= None || int(id) >= len(t.names) {
		return NoneName
	}
	return t.names[id]
}

// Batch is the batching endpoint's ID, and false (with None) when
// batching is off.
func (t *Table) Batch() (ID, bool) {
	if t == nil || t.batch == None {
		return None, false
	}
	return t.batch, true
}

// Names are the names of every ID, indexed by ID.
func (t *Table) Names() []string {
	if t == nil || len(t.names) == 0 {
		return []string{NoneName}
	}
	return append([]string(nil), t.names...)
}
