package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gateway/app"
)

// headerFlag is a repeatable -H 'Name: value', kept whole: a header's
// value may itself hold commas.
type headerFlag []string

func (h *headerFlag) String() string { return strings.Join(*h, "; ") }

func (h *headerFlag) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
		return fmt.Errorf("want 'Name: value'")
	}
	*h = append(*h, v)
	return nil
}

// cmdExplain answers "why wasn't this cached?": it sends one request
// through the config's route logic to the real upstream and prints what
// the cache would do with the response, and why.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway explain [-config FILE] [-H 'Name: value' ...] [-X METHOD] [-json] URL")
		fs.PrintDefaults()
	}
	path := fs.String("config", defaultConfig, "config file")
	var headers headerFlag
	fs.Var(&headers, "H", "a request header, 'Name: value' (repeat it for more)")
	method := fs.String("X", http.MethodGet, "request method")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	// The URL may come before the flags too, as curl users type it.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "explain: one URL is required")
		fs.Usage()
		return errUsage
	}
	if *method == "" || strings.ContainsAny(*method, " \t/:") {
		fmt.Fprintf(stderr, "invalid value %q for flag -X: want a method such as GET\n", *method)
		fs.Usage()
		return errUsage
	}
	u, err := url.Parse(rest[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "explain: %q is not an http:// or https:// URL\n", rest[0])
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(context.Background(), strings.ToUpper(*method), u.String(), nil)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host // the route is chosen by the Host the client sends
		req.Header.Del("Host")
	}
	e, err := app.Explain(req.Context(), cfg, req)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	}
	printExplanation(stdout, e)
	return nil
}

// printExplanation writes e for a person, one fact a line.
func printExplanation(w io.Writer, e app.Explanation) {
	vary := "none"
	if len(e.Vary) > 0 {
		vary = strings.Join(e.Vary, ", ")
	}
	directives := e.Directives
	if directives == "" {
		directives = "(none)"
	}
	fmt.Fprintf(w, "route:      %s\n", e.Route)
	fmt.Fprintf(w, "cache key:  %s\n", e.Key)
	fmt.Fprintf(w, "vary:       %s\n", vary)
	fmt.Fprintf(w, "status:     %d\n", e.Status)
	fmt.Fprintf(w, "directives: %s: %s\n", e.DirectivesFrom, directives)
	if !e.Stored {
		fmt.Fprintf(w, "stored:     no (%s)\n", e.Reason)
		fmt.Fprintf(w, "because:    %s\n", e.Because)
		fmt.Fprintf(w, "to change:  %s\n", e.Advice)
		return
	}
	how := "given by the origin"
	if e.Heuristic {
		how = "heuristic, from Last-Modified"
	}
	fmt.Fprintf(w, "stored:     yes\n")
	fmt.Fprintf(w, "fresh for:  %s (%s)\n", secs(e.Lifetime), how)
	fmt.Fprintf(w, "then stale: stale-while-revalidate %s, stale-if-error %s, grace %s\n",
		secs(e.StaleWhileRevalidate), secs(e.StaleIfError), secs(e.Grace))
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).String()
}
