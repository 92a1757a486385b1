package routes

import (
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		t     *Table
		names []string
		batch ID
	}{
		{"nil", nil, []string{NoneName}, None},
		{"routes", New([]string{"api", "static"}, false), []string{NoneName, "api", "static"}, None},
		{"batch", New([]string{"api", "static"}, true), []string{NoneName, "api", "static", BatchName}, 3},
		{"batch only", New(nil, true), []string{NoneName, BatchName}, 1},
	} {
		if got := tc.t.Names(); !slices.Equal(got, tc.names) {
			t.Errorf("%s: Names %q; want %q", tc.name, got, tc.names)
		}
		if got := tc.t.Len(); got != len(tc.names) {
			t.Errorf("%s: Len %d; want %d", tc.name, got, len(tc.names))
		}
		for id, name := range tc.names {
			if got := tc.t.Name(ID(id)); got != name {
				t.Errorf("%s: Name(%d) %q; want %q", tc.name, id, got, name)
			}
		}
		if got := tc.t.Name(ID(len(tc.names))); got != NoneName {
			t.Errorf("%s: Name past the end %q; want %q", tc.name, got, NoneName)
		}
		b, ok := tc.t.Batch()
		if b != tc.batch || ok != (tc.batch != None) {
			t.Errorf("%s: Batch %d, %v; want %d", tc.name, b, ok, tc.batch)
		}
	}
	// A configured route's ID names it.
	tab := New([]string{"a", "b", "c"}, true)
	for i, name := range []string{"a", "b", "c"} {
		if got := tab.Name(Of(i)); got != name {
			t.Errorf("Name(Of(%d)) %q; want %q", i, got, name)
		}
	}
}
