package h3test

import (
	"os"
	"os/exec"
	"testing"
)

// childEnv marks the child process WithoutRace starts.
const childEnv = "GATEWAY_TEST_WITHOUT_RACE"

// WithoutRace runs the calling test again in a child `go test` of its
// package built without the race detector, and reports true when it did
// (the caller then returns): quic-go's client has a data race of its own
// when it sends requests in 0-RTT (github.com/quic-go/quic-go issue
// 4303: opening a stream while the handshake applies the server's
// transport parameters), which the detector would charge to the test.
// The gateway's side of those tests is the same code either way, and is
// raced in every other HTTP/3 test. Without the detector, or in the
// child, it reports false and the test runs here.
func WithoutRace(t *testing.T) bool {
	t.Helper()
	if !raceEnabled || os.Getenv(childEnv) != "" {
		return false
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // where .ci/run and the README expect it
	}
	cmd := exec.CommandContext(t.Context(), goBin, "test", "-count=1", "-v", "-run", "^"+t.Name()+"$", ".")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s without the race detector: %v\n%s", t.Name(), err, out)
	}
	t.Logf("%s ran without the race detector (quic-go's 0-RTT client races):\n%s", t.Name(), out)
	return true
}
