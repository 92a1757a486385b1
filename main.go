// Command gateway is a caching reverse proxy and API gateway configured by
// gateway.yaml.
//
//	gateway run [FILE]                    serve (the default command)
//	gateway validate [FILE]               check a config and list its errors
//	gateway explain [-json] URL           why a response would or would not be cached
//	gateway proxy --listen ADDR --to URL  one route to one upstream, no file
//	gateway demo                          the gateway with a sample backend
//	gateway version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"gateway/app"
	"gateway/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: gateway [command] [flags]

commands:
  run       [-watch] [FILE]            serve with a config file (default command;
                                       FILE, or -config FILE, defaults to gateway.yaml)
  validate  [FILE]                     check a config file and print every error
  proxy     --listen ADDR --to URL     proxy one upstream, no config file
  demo      [--listen ADDR]            run the gateway with a built-in sample backend
  explain   [-H 'N: v'] [-X M] [-json] URL
                                       ask the upstream once and say whether and why
                                       not the cache would store the answer
  version                              print the version (also --version)
`

func cli(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isCommandFlag(args[0])) {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = cmdRun(args, stdout, stderr)
	case "validate":
		err = cmdValidate(args, stdout, stderr)
	case "proxy":
		err = cmdProxy(args, stdout, stderr)
	case "demo":
		err = cmdDemo(args, stdout, stderr)
	case "explain":
		err = cmdExplain(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "gateway", buildVersion())
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "gateway:", err)
	return 1
}

// isCommandFlag reports whether a first argument that looks like a flag
// is a command of its own: help and version, in their usual spellings.
func isCommandFlag(a string) bool {
	switch a {
	case "-h", "--help", "-help", "-version", "--version":
		return true
	}
	return false
}

// errUsage marks an error the flag package has already printed.
var errUsage = errors.New("usage")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway run [-watch] [-config] [FILE]   (FILE defaults to "+defaultConfig+")")
		fs.PrintDefaults()
	}
	path := fs.String("config", defaultConfig, "config file (or give it as the argument)")
	watch := fs.Bool("watch", false, "reload the config file when it changes (as on SIGHUP)")
	if err := parseConfigFlags(fs, args, path); err != nil {
		return err
	}
	cfg, err := loadConfig(fs, *path)
	if err != nil {
		return err
	}
	return runConfigFile(*path, *watch, cfg, stdout, stderr, nil)
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway validate [-config] [FILE]   (FILE defaults to "+defaultConfig+")")
		fs.PrintDefaults()
	}
	path := fs.String("config", defaultConfig, "config file (or give it as the argument)")
	if err := parseConfigFlags(fs, args, path); err != nil {
		return err
	}
	// Unlike a reload, validate runs before the gateway holds its ports:
	// an ACME challenge port that cannot be bound is reported here.
	cfg, err := loadConfig(fs, *path, app.CheckPorts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", *path, summary(cfg))
	return nil
}

// summary says what validate checked, so that an operator can see the
// file read is the one meant: "2 listeners, 3 routes (1 caching, 1
// compressing), 2 upstreams (3 targets), admin on 127.0.0.1:9090".
func summary(c *config.Config) string {
	caching, compressing, targets := 0, 0, 0
	for _, r := range c.Routes {
		if r.Cache.Enabled {
			caching++
		}
		if r.Compress.Enabled {
			compressing++
		}
	}
	for _, u := range c.Upstreams {
		targets += len(u.Targets)
	}
	s := fmt.Sprintf("%s, %s (%d caching, %d compressing), %s (%s)",
		count(len(c.Listeners), "listener"), count(len(c.Routes), "route"), caching, compressing,
		count(len(c.Upstreams), "upstream"), count(targets, "target"))
	if c.Admin.Enabled() {
		s += ", admin on " + c.Admin.Address
	} else {
		s += ", no admin listener"
	}
	return s
}

// count is "1 route" or "n routes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

const defaultConfig = "gateway.yaml"

// parseConfigFlags parses the flags of a command that reads a config
// file, which may be given as -config FILE or as the one argument; flags
// may also follow it ("gateway run gateway.yaml -watch").
func parseConfigFlags(fs *flag.FlagSet, args []string, path *string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		return nil
	}
	configSet := false
	fs.Visit(func(f *flag.Flag) { configSet = configSet || f.Name == "config" })
	if configSet {
		fmt.Fprintf(fs.Output(), "unexpected argument %q: the config file is given by -config already\n", fs.Arg(0))
		return errUsage
	}
	*path = fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	return nil
}

// errNoConfig is returned when the default config file is absent: the
// operator ran the gateway without saying what to serve.
var errNoConfig = errors.New("no " + defaultConfig + " here: give one with -config FILE (or as the argument), " +
	"try `gateway demo`, or `gateway proxy --to URL`; gateway -h lists the commands")

// loadConfig is app.Load, with a way to go on when the file is the
// default one and it does not exist.
func loadConfig(fs *flag.FlagSet, path string, extra ...config.Check) (*config.Config, error) {
	cfg, err := config.Load(path, append([]config.Check{app.Check}, extra...)...)
	if err != nil && errors.Is(err, iofs.ErrNotExist) {
		given := false
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == "config" })
		if !given && path == defaultConfig {
			return nil, errNoConfig
		}
	}
	return cfg, err
}

// runConfig serves cfg until SIGTERM or SIGINT, then drains. The
// access log's stdout and stderr are stdout and stderr. started,
// when not nil, is called once every socket is bound.
func runConfig(cfg *config.Config, stdout, stderr io.Writer, started func(*app.App)) error {
	return runConfigFile("", false, cfg, stdout, stderr, started)
}

// runConfigFile is runConfig for a config read from path, which SIGHUP
// and POST /reload read again (hot reload, app/reload.go), and, with
// watch, any change to it (app/watch.go).
func runConfigFile(path string, watch bool, cfg *config.Config, stdout, stderr io.Writer, started func(*app.App)) error {
	log := newLogger(cfg.Log, stderr)
	a, err := app.New(cfg, app.Options{Logger: log, Stdout: stdout, Stderr: stderr, ConfigPath: path, Version: buildVersion()})
	if err != nil {
		return err
	}
	if err := a.Listen(); err != nil {
		_ = a.Shutdown(context.Background())
		if path != "" {
			return explainListen(path, err)
		}
		return err
	}
	if trim := applyMemoryPlan(planMemory(cfg, a.Caches()), log); trim != nil {
		defer trim.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	go func() {
		// After the first signal a second one ends the process at once,
		// for the operator who does not want to wait for the drain.
		<-ctx.Done()
		stop()
	}()
	// SIGHUP reloads; without a config file (gateway proxy, demo) there
	// is nothing to reload and Reload says so in the log. It is caught
	// either way: its default action ends the process, cutting off
	// requests in flight.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = a.Reload(ctx)
			}
		}
	}()
	if path != "" && watch {
		if err := a.Watch(ctx); err != nil {
			log.Warn("config file not watched; SIGHUP and POST /reload still reload it", "config", path, "err", err)
		}
	}
	if started != nil {
		started(a)
	}
	return a.Serve(ctx)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func buildVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " (" + bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += ", " + s.Value[:12]
			}
		}
		v += ")"
	}
	return v
}
