package config

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoRuntimePackage: config is the schema and defaults of
// gateway.yaml, and the runtime packages check their own options
// (package app maps one to the other), so config depends on none of
// them: of the module, only gateway/internal/... at most.
func TestImportsNoRuntimePackage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "gateway/") && p != "gateway/config" && !strings.HasPrefix(p, "gateway/internal/") {
			t.Errorf("config depends on %s; want no package of the module but gateway/internal/...", p)
		}
	}
}
