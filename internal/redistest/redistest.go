// Package redistest starts real Redis processes for tests: single servers,
// clusters and Sentinel groups, each on free loopback ports in a test's
// temporary directory, stopped by the PID this package started when the
// test ends.
//
// The shared cache tier talks to Redis, and what matters there (MOVED
// and ASK during resharding, a failover behind Sentinel, a server that
// hangs or restarts empty) is the behaviour of the real server, which a
// fake would only repeat our assumptions about. The programs come from
// the Debian packages redis-server and redis-sentinel; without them a
// test is skipped, except under CI (CI set), where it fails, so that CI
// can never pass by skipping.
//
// Every wait polls a condition against a generous deadline (Timeout):
// the tests run under -race on loaded machines, where no fixed sleep is
// long enough.
package redistest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gateway/internal/testcert"
)

// Timeout bounds every wait for a condition: a server answering, a
// cluster agreeing, a failover completing. It is generous because a
// loaded CI machine under -race can be many times slower than a laptop.
var Timeout = 60 * time.Second

// cmdTimeout bounds one command's round trip.
const cmdTimeout = 20 * time.Second

// Need returns the path of program (redis-server, redis-cli or
// redis-sentinel). When it is missing, t is skipped with the Debian
// package to install, or, when CI is set, failed: CI must run these
// tests, not skip them.
func Need(t testing.TB, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	pkg := "redis-server"
	if program == "redis-sentinel" {
		pkg = "redis-sentinel"
	}
	msg := fmt.Sprintf("redistest: %s not found (%v); install the Debian package %s (apt-get install %s)", program, err, pkg, pkg)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this test may not be skipped")
	}
	t.Skip(msg)
	return ""
}

// Server is one Redis process (redis-server or redis-sentinel) that this
// package started. Its methods that take no testing.TB may be called from
// any goroutine; those that take one must be called from the test's.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string // working directory: the log (redis.log) and any files the server writes
	// CAFile is the PEM file of the CA that signed a TLS server's
	// certificate (StartTLS); "" for a plain server.
	CAFile string

	password string      // from --requirepass, sent with AUTH before each command
	argv     []string    // the command line of the last successful start, reused by Restart
	tls      *tls.Config // how this package's own commands dial a TLS server; nil: plain TCP

	mu       sync.Mutex
	p        *proc
	authUser string // set by Auth: the ACL user this package's commands authenticate as
	authPass string
}

// proc is one started process and the goroutine that waits for it, so
// that an early exit is seen at once and the process is always reaped.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process unless it has already exited; the PID
// is only ever that of the process this package started.
func (p *proc) signal(sig os.Signal) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Start starts a redis-server on a free loopback port, bound to
// 127.0.0.1 only, with no persistence, in a fresh directory under
// t.TempDir(), and stops it (SIGKILL, then wait) when t ends. args are
// appended to the command line, e.g. "--requirepass", "x".
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Need(t, "redis-server")
	dir := mkdir(t, "redis")
	return launch(t, dir, func(port int) ([]string, error) {
		argv := []string{bin,
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
		}
		return append(argv, args...), nil
	})
}

// StartTLS is Start for a server that speaks TLS only: no plain port
// (--port 0), a --tls-port on 127.0.0.1 with a certificate for
// 127.0.0.1 signed by a fresh test CA, all written into the server's
// directory; Addr and Port are the TLS port's, and CAFile is the CA's
// PEM, for clients to verify the server with. Clients need no
// certificate of their own (--tls-auth-clients no, which args may
// override). This package's own commands (the readiness check, Do, Cmd)
// then speak TLS too.
func StartTLS(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Need(t, "redis-server")
	dir := mkdir(t, "redis")
	caFile, certFile, keyFile := testcert.WriteCA(t, dir)
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("redistest: no certificate in %s", caFile)
	}
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return launchWith(t, dir, func(s *Server) { s.CAFile, s.tls = caFile, tc }, func(port int) ([]string, error) {
		argv := []string{bin,
			"--port", "0",
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", certFile,
			"--tls-key-file", keyFile,
			"--tls-ca-cert-file", caFile,
			"--tls-auth-clients", "no",
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
		}
		return append(argv, args...), nil
	})
}

// TLSConfig is a client TLS configuration that trusts the server's CA
// (a copy, for the caller to change); nil for a plain server.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// Auth makes this package's later commands on s (Do, Cmd, TextCmd, but
// not the readiness check of a Restart) authenticate as user with
// password, as after creating an ACL user and turning the default user
// off. A Restart forgets ACL users (nothing is persisted): call Auth
// again with "", "" after one.
func (s *Server) Auth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authUser, s.authPass = user, password
}

// mkdir makes a fresh directory for one process under t.TempDir().
func mkdir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// launch starts the command build gives for a free port, retrying with
// another port when the chosen one was taken in the meantime, waits
// until the process answers, and registers its cleanup.
func launch(t testing.TB, dir string, build func(port int) ([]string, error)) *Server {
	t.Helper()
	return launchWith(t, dir, nil, build)
}

// launchWith is launch with setup applied to the Server before its
// first start (e.g. how to dial it).
func launchWith(t testing.TB, dir string, setup func(*Server), build func(port int) ([]string, error)) *Server {
	t.Helper()
	s := &Server{Dir: dir}
	if setup != nil {
		setup(s)
	}
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		argv, err := build(port)
		if err != nil {
			t.Fatal(err)
		}
		s.Port, s.Addr, s.argv = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), argv
		s.password = passwordOf(argv)
		err = s.spawn()
		if err == nil {
			t.Cleanup(s.Kill)
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("redistest: starting %s: %v\n%s", strings.Join(s.argv, " "), lastErr, s.LogTail())
	return nil
}

// errPortTaken is a start that failed because the port was bound by the
// time the server tried to listen on it; another port, or another try on
// the same one, may succeed.
var errPortTaken = errors.New("port already in use")

// spawn starts s.argv and waits until the process itself (its INFO
// process_id, not some other server that took the port) answers.
func (s *Server) spawn() error {
	logPath := filepath.Join(s.Dir, "redis.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	start := logSize(logPath)
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = f, f
	// Should the test binary die without running cleanups (a panic, a
	// -timeout), the kernel kills the server with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()

	want := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)
	deadline := time.Now().Add(Timeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if p.exited() {
			log := readFrom(logPath, start)
			if strings.Contains(log, "Address already in use") || strings.Contains(log, "Could not create server TCP listening socket") || strings.Contains(log, "Could not create server TLS listening socket") {
				return errPortTaken
			}
			return fmt.Errorf("exited before answering: %v", cmd.ProcessState)
		}
		v, err := s.dial(2*time.Second, "", s.password, "INFO", "server")
		if err == nil && strings.Contains(Text(v), want) {
			return nil
		}
		if time.Now().After(deadline) {
			p.signal(syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("not answering after %v (last: %v)", Timeout, err)
		}
		time.Sleep(delay)
	}
}

// freePort returns a loopback port that is free now, as is port+10000,
// the cluster bus port a cluster node opens beside it.
func freePort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port > 55535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err == nil {
			bus.Close()
			return port, nil
		}
	}
	return 0, errors.New("redistest: no free port pair (port, port+10000) found")
}

func passwordOf(argv []string) string {
	pw := ""
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == "--requirepass" {
			pw = argv[i+1]
		}
	}
	return pw
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// LogTail is the end of the server's log (its stdout and stderr), for
// failure messages.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 3000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return fmt.Sprintf("--- log of %s (%s) ---\n%s", s.Addr, s.Dir, b)
}

func (s *Server) proc() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// PID is the process ID of the running (or last) process.
func (s *Server) PID() int { return s.proc().cmd.Process.Pid }

// Exited reports whether the process has exited.
func (s *Server) Exited() bool { return s.proc().exited() }

// Stop asks the server to shut down (SIGTERM) and waits for it to exit,
// killing it if it has not within Timeout. A paused server is resumed so
// that it can act on the signal.
func (s *Server) Stop() {
	p := s.proc()
	p.signal(syscall.SIGTERM)
	p.signal(syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(Timeout):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
}

// Kill kills the server (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	p := s.proc()
	p.signal(syscall.SIGKILL)
	<-p.done
}

// Pause stops the process (SIGSTOP): its port still accepts connections
// but nothing is answered until Resume, as with a server stuck in a long
// command or swapping.
func (s *Server) Pause() { s.proc().signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() { s.proc().signal(syscall.SIGCONT) }

// Restart starts the server again with the same command line on the same
// port, empty (nothing is persisted); a cluster node keeps its nodes.conf
// and so rejoins as the same node, and a sentinel keeps its rewritten
// config. A process still running is killed first. Binding is retried
// until the port is free again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	deadline := time.Now().Add(Timeout)
	for {
		err := s.spawn()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			t.Fatalf("redistest: restarting %s: %v\n%s", s.Addr, err, s.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Do runs one command and returns its reply as text (see Text); an error
// reply or a failed connection fails t.
func (s *Server) Do(t testing.TB, args ...string) string {
	t.Helper()
	v, err := s.Cmd(args...)
	if err != nil {
		t.Fatalf("redistest: %s %q: %v\n%s", s.Addr, args, err, s.LogTail())
	}
	return Text(v)
}

// Flush empties every database of the server.
func (s *Server) Flush(t testing.TB) {
	t.Helper()
	s.Do(t, "FLUSHALL")
}

// Cmd runs one command on a new connection and returns its reply: a
// string (simple or bulk), an int64, nil (a nil bulk or array), or an
// []any of those. An error reply is returned as an Error.
func (s *Server) Cmd(args ...string) (any, error) { return s.cmd(cmdTimeout, args...) }

// TextCmd is Cmd with the reply as Text.
func (s *Server) TextCmd(args ...string) (string, error) {
	v, err := s.Cmd(args...)
	return Text(v), err
}

// cmd runs one command as the user of Auth, or else with the
// --requirepass password.
func (s *Server) cmd(timeout time.Duration, args ...string) (any, error) {
	s.mu.Lock()
	user, pass := s.authUser, s.authPass
	s.mu.Unlock()
	if user == "" && pass == "" {
		pass = s.password
	}
	return s.dial(timeout, user, pass, args...)
}

// dial runs one command on a new connection (TLS when s.tls is set),
// authenticated first when pass is not "".
func (s *Server) dial(timeout time.Duration, user, pass string, args ...string) (any, error) {
	d := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = tls.DialWithDialer(d, "tcp", s.Addr, s.tls)
	} else {
		conn, err = d.Dial("tcp", s.Addr)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	c := newRESP(conn)
	if pass != "" {
		auth := []string{"AUTH", pass}
		if user != "" {
			auth = []string{"AUTH", user, pass}
		}
		if _, err := c.do(auth...); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return c.do(args...)
}
