package redistier

import (
	"strings"
	"testing"
)

// A password given in an address, which the tier refuses, is not
// repeated in the problem that says so: problems are logged.
func TestAddrProblemHidesPassword(t *testing.T) {
	for _, a := range []string{
		"redis://:hunter2@localhost:6379",
		"rediss://user:hunter2@localhost:6379",
		"redis://user:hunter2@localhost:6379/1",
		"redis://user:hunter2@local%zzhost:6379", // not a URL
	} {
		_, _, err := ParseAddr(a)
		if err == nil {
			t.Fatalf("ParseAddr(%q): no error", a)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseAddr(%q): %v: the password shows", a, err)
		}
		cfg := Config{Addrs: []string{a}}.WithDefaults()
		if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Validate with %q: %v: want an error without the password", a, err)
		}
	}
}
