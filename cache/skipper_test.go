package cache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

type fakeSkipper struct {
	http.ResponseWriter
	skipped bool
}

func (f *fakeSkipper) SkipCompression() { f.skipped = true }

type wrapped struct{ http.ResponseWriter }

func (w wrapped) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestFindSkipper: the compressor's writer is found directly or behind
// writers that unwrap to it, and nothing is found without one.
func TestFindSkipper(t *testing.T) {
	sk := &fakeSkipper{ResponseWriter: httptest.NewRecorder()}
	for name, w := range map[string]http.ResponseWriter{
		"direct":     sk,
		"behind one": wrapped{sk},
		"behind two": wrapped{wrapped{sk}},
	} {
		if got := findSkipper(w); got != skipper(sk) {
			t.Errorf("%s: findSkipper = %v; want the compressor's writer", name, got)
		}
	}
	for name, w := range map[string]http.ResponseWriter{
		"none":           httptest.NewRecorder(),
		"wrapped, none":  wrapped{httptest.NewRecorder()},
		"unwraps to nil": wrapped{nil},
	} {
		if got := findSkipper(w); got != nil {
			t.Errorf("%s: findSkipper = %v; want nil", name, got)
		}
	}
}
