package config

import (
	"os"
	"path/filepath"
	"testing"
)

// The access_log section's bad cases join TestParseErrors.
func init() { badCases = append(badCases, accessLogBadCases...) }

var accessLogBadCases = []badCase{
	{name: "access_log enums", in: minimal + "access_log:\n  format: xml\n  enabled: yes\n",
		want: []string{
			`t.yaml:9: access_log.format: invalid value "xml" (want json or text)`,
			`t.yaml:10: access_log.enabled: invalid boolean "yes" (want true or false)`,
		}, n: 2},
	{name: "access_log output in a missing directory", in: minimal + "access_log:\n  output: /nonexistent-dir/access.log\n",
		want: []string{`t.yaml:9: access_log.output: invalid value "/nonexistent-dir/access.log" (want stdout, stderr or a file in an existing directory)`}, n: 1},
	{name: "access_log output a directory", in: minimal + "access_log:\n  output: /tmp\n",
		want: []string{`t.yaml:9: access_log.output: "/tmp" is not a regular file`}, n: 1},
	{name: "access_log unknown field", in: minimal + "access_log:\n  path: x\n",
		want: []string{`t.yaml:9: access_log.path: unknown field`}, n: 1},
	{name: "server_timing not a bool", in: minimal + "server_timing: sometimes\n",
		want: []string{`t.yaml:8: server_timing: invalid boolean "sometimes" (want true or false)`}, n: 1},
}

// TestAccessLog: values, defaults (enabled, json, stdout), an explicit
// false, and a file path.
func TestAccessLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "access.log")
	for _, tc := range []struct {
		in   string
		want AccessLog
		st   bool
	}{
		{"", AccessLog{Enabled: true, Format: "text", Output: "stdout"}, false},
		{"access_log: {enabled: false}\n", AccessLog{Enabled: false, Format: "text", Output: "stdout"}, false},
		{"access_log: {format: text, output: stderr}\nserver_timing: true\n", AccessLog{Enabled: true, Format: "text", Output: "stderr"}, true},
		{"access_log:\n  output: " + file + "\n", AccessLog{Enabled: true, Format: "text", Output: file}, false},
	} {
		c, err := Parse("t.yaml", []byte(minimal+tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.AccessLog != tc.want || c.ServerTiming != tc.st {
			t.Errorf("%q: got %+v, server_timing %v; want %+v, %v", tc.in, c.AccessLog, c.ServerTiming, tc.want, tc.st)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("loading the config created %s; only the gateway should", file)
	}
}
