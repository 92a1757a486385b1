package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"unicode"

	"gateway/app"
)

// The README's quick start and the examples it points to are kept true
// here: the example configs load, the quick start's config is the one
// the README shows, and its steps (validate, run, a miss, a hit, a purge,
// a miss again) behave as the README says.

// TestExampleConfigsLoad: every config under examples/ that the docs
// point to is valid.
func TestExampleConfigsLoad(t *testing.T) {
	for _, f := range []string{"examples/minimal.yaml", "examples/site.yaml"} {
		if _, err := app.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestEdgeExample: examples/edge.yaml (ACME and HTTP/3) is valid, storage and all,
// and the README shows it as it is.
func TestEdgeExample(t *testing.T) {
	t.Setenv("ACME_STORAGE", t.TempDir())
	if _, err := app.Load("examples/edge.yaml"); err != nil {
		t.Error(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("examples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	section := markdownSection(string(readme), "## At the edge, with ACME and HTTP/3")
	if !strings.Contains(section, "```yaml\n"+string(want)+"```\n") {
		t.Errorf("the README's edge section does not show examples/edge.yaml as it is")
	}
}

// TestReadmeQuickStartConfig: the config block of the README's quick
// start is examples/minimal.yaml, byte for byte.
func TestReadmeQuickStartConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("examples/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	section := markdownSection(string(readme), "## Quick start")
	if section == "" {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	const open, closing = "```yaml\n", "\n```\n"
	i := strings.Index(section, open)
	if i < 0 {
		t.Fatal("the README's quick start has no ```yaml block")
	}
	block := section[i+len(open):]
	j := strings.Index(block, closing)
	if j < 0 {
		t.Fatal("the README's quick start yaml block is not closed")
	}
	if got := block[:j+1]; got != string(want) {
		t.Errorf("the README's quick start config differs from examples/minimal.yaml:\n--- README\n%s--- examples/minimal.yaml\n%s", got, want)
	}
}

// markdownSection returns the text after the heading line up to the next
// heading of the same or a higher level (lines in code fences are not
// headings).
func markdownSection(doc, heading string) string {
	start := strings.Index(doc, "\n"+heading+"\n")
	if start < 0 {
		return ""
	}
	rest := doc[start+1+len(heading)+1:]
	level := strings.Count(strings.Fields(heading)[0], "#")
	fenced := false
	for off := 0; off < len(rest); {
		nl := strings.IndexByte(rest[off:], '\n')
		if nl < 0 {
			break
		}
		line := rest[off : off+nl]
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if n := len(line) - len(strings.TrimLeft(line, "#")); !fenced && n > 0 && n <= level && strings.HasPrefix(line[n:], " ") {
			return rest[:off]
		}
		off += nl + 1
	}
	return rest
}

// TestQuickStart runs the README's quick start in a clean directory with
// this test binary as the gateway: examples/minimal.yaml, its upstream
// pointed at a test server and its ports at free ones, validated and
// run; the same URL twice is a miss then a hit, a purge of its exact URL
// at the admin listener purges one entry, and the next request is a
// miss again.
func TestQuickStart(t *testing.T) {
	var fetches atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path": %q}`+"\n", r.URL.Path)
	}))
	defer up.Close()

	text, err := os.ReadFile("examples/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(text)
	for _, r := range [][2]string{
		{"127.0.0.1:8080", "127.0.0.1:0"},
		{"127.0.0.1:9090", "127.0.0.1:0"},
		{"http://127.0.0.1:3000", up.URL},
	} {
		if n := strings.Count(cfg, r[0]); n != 1 {
			t.Fatalf("examples/minimal.yaml holds %q %d times; the quick start expects it once", r[0], n)
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}

	// The child is started by os.Args[0]; keep it valid from another
	// directory.
	if !filepath.IsAbs(os.Args[0]) {
		abs, err := filepath.Abs(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		os.Args[0] = abs
	}
	t.Chdir(t.TempDir())
	if err := os.WriteFile("minimal.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// ./gateway validate minimal.yaml
	var out, errb bytes.Buffer
	if code := cli([]string{"validate", "minimal.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("validate: exit %d; stderr:\n%s", code, errb.String())
	}
	if want := "minimal.yaml: ok: 1 listener, 1 route (1 caching, 1 compressing), 1 upstream (1 target), admin on 127.0.0.1:"; !strings.HasPrefix(out.String(), want) {
		t.Errorf("validate: got %q; want it to start %q, as the README shows", out.String(), want)
	}

	// ./gateway run minimal.yaml
	c := startChild(t, "run", "minimal.yaml")
	gw, adm := c.waitAddrs(t, true)

	// curl, which asks for no compression.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	do := func(method, url string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: got %d; want 200 (%s)", method, url, resp.StatusCode, b)
		}
		return resp, string(b)
	}
	url := "http://" + gw + "/hello"
	check := func(what, want string, wantFetches int64) {
		t.Helper()
		resp, body := do("GET", url)
		if st := resp.Header.Get("Cache-Status"); !strings.Contains(st, want) {
			t.Errorf("%s request: Cache-Status %q; want it to contain %q", what, st, want)
		}
		if body != `{"path": "/hello"}`+"\n" {
			t.Errorf("%s request: body %q", what, body)
		}
		if n := fetches.Load(); n != wantFetches {
			t.Errorf("after the %s request the upstream was asked %d times; want %d", what, n, wantFetches)
		}
	}
	check("first", "fwd=uri-miss", 1)
	check("second", "hit", 1)

	// curl -X POST '127.0.0.1:9090/cache/purge?url=http://127.0.0.1:8080/hello'
	_, body := do("POST", "http://"+adm+"/cache/purge?url="+url)
	if !strings.Contains(body, `"purged": 1`) {
		t.Errorf("purge: got %s; want \"purged\": 1", body)
	}
	check("third", "fwd=uri-miss", 2)

	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit code %d; want 0; log:\n%s", code, c.logs())
	}
}

// TestDocLinks: every relative link in README.md, ARCHITECTURE.md,
// docs/*.md and examples/**/README.md names a file that exists, and
// every #anchor names a heading of the page it points to (GitHub's
// heading ids).
func TestDocLinks(t *testing.T) {
	pages := []string{"README.md", "ARCHITECTURE.md", "bench/README.md"}
	more, _ := filepath.Glob("docs/*.md")
	pages = append(pages, more...)
	more, _ = filepath.Glob("examples/*/README.md")
	pages = append(pages, more...)
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(stripCode(string(text)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", page, target, err)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: link %q: %v", page, target, err)
				continue
			}
			if !headingIDs(string(doc))[anchor] {
				t.Errorf("%s: link %q: %s has no heading with that id", page, target, path)
			}
		}
	}
}

// stripCode removes fenced code blocks, whose brackets are not links.
func stripCode(doc string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.SplitAfter(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(line)
		}
	}
	return b.String()
}

// headingIDs returns the ids GitHub gives a page's headings: lower case,
// punctuation other than - and _ dropped, spaces made -, repeats numbered.
func headingIDs(doc string) map[string]bool {
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(stripCode(doc), "\n") {
		n := len(line) - len(strings.TrimLeft(line, "#"))
		if n == 0 || n > 6 || !strings.HasPrefix(line[n:], " ") {
			continue
		}
		var id strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(line[n:])) {
			switch {
			case r == ' ':
				id.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				id.WriteRune(r)
			}
		}
		s := id.String()
		if k := seen[s]; k > 0 {
			ids[fmt.Sprintf("%s-%d", s, k)] = true
		} else {
			ids[s] = true
		}
		seen[s]++
	}
	return ids
}
