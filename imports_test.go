package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// importRules are ARCHITECTURE.md's import rules: for each package of
// the gateway, the packages of the gateway it may import (outside its
// tests); "internal" stands for any of gateway/internal/.... A package
// missing here fails the test, so a new one gets a rule when it comes.
var importRules = map[string][]string{
	"gateway":                   {"app", "config", "demo", "gcfloor", "memlimit"},
	"gateway/app":               {"*"},
	"gateway/acme":              {"entrypoint", "internal"},
	"gateway/admin":             {"cache", "compress", "proxy", "proxy/balance"},
	"gateway/batch":             {"internal"},
	"gateway/cache":             {"compress", "internal"},
	"gateway/compress":          {"internal"},
	"gateway/config":            {},
	"gateway/dashboard":         {"admin", "cache", "compress", "proxy", "proxy/balance", "internal"},
	"gateway/demo":              {},
	"gateway/entrypoint":        {"internal"},
	"gateway/gcfloor":           {},
	"gateway/limit":             {"internal"},
	"gateway/memlimit":          {},
	"gateway/metrics":           {"acme", "cache", "compress", "jobs", "proxy", "proxy/balance", "redistier", "internal"},
	"gateway/observe":           {"batch", "metrics", "proxy", "internal"},
	"gateway/proxy":             {"limit", "proxy/balance", "internal"},
	"gateway/proxy/balance":     {"internal"},
	"gateway/jobs":              {"internal"},
	"gateway/redistier":         {"cache", "internal"},
	"gateway/internal/fielderr": {}, "gateway/internal/httpmethod": {}, "gateway/internal/leakcheck": {},
	"gateway/internal/outcome": {}, "gateway/internal/routes": {}, "gateway/internal/sockread": {},
	"gateway/internal/testcert": {}, "gateway/internal/reloadtest": {}, "gateway/internal/redistest": {"internal"}, "gateway/internal/jobid": {"internal"},
	"gateway/internal/browsertest": {}, "gateway/internal/pebbletest": {"internal"}, "gateway/internal/h3test": {},
	"gateway/internal/clientwatch": {},
}

// TestImportRules: no package imports what ARCHITECTURE.md says it must
// not (config and app only where they are wired, entrypoint and proxy
// apart, the small packages standalone).
func TestImportRules(t *testing.T) {
	imports := map[string]map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "bench" || name == "testdata" || name == "examples" || name == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := "gateway"
		if dir := filepath.ToSlash(filepath.Dir(path)); dir != "." {
			pkg += "/" + dir
		}
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, "gateway/"); ok {
				imports[pkg][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, ims := range imports {
		allowed, ok := importRules[pkg]
		if !ok {
			t.Errorf("%s has no import rule; add one (and a line in ARCHITECTURE.md)", pkg)
			continue
		}
		if slices.Contains(allowed, "*") {
			continue
		}
		for im := range ims {
			if slices.Contains(allowed, im) || (strings.HasPrefix(im, "internal/") && slices.Contains(allowed, "internal")) {
				continue
			}
			t.Errorf("%s imports gateway/%s, which its import rule does not allow", pkg, im)
		}
	}
}
