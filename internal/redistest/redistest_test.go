package redistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gone reports whether the process pid no longer exists (or the PID now
// belongs to something that is not Redis).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err != nil || !strings.Contains(string(b), "redis")
}

// checkGone fails t if any of the processes is still there after the
// subtest that started them ended.
func checkGone(t *testing.T, pids []int) {
	t.Helper()
	if len(pids) == 0 {
		t.Fatal("no PIDs recorded")
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("process %d still running after cleanup", pid)
		}
	}
}

func TestServer(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("lifecycle", func(t *testing.T) {
		s := Start(t)
		pids = append(pids, s.PID())
		if got := s.Do(t, "PING"); got != "PONG" {
			t.Fatalf("PING = %q", got)
		}
		s.Do(t, "SET", "k", "v")
		if got := s.Do(t, "GET", "k"); got != "v" {
			t.Fatalf("GET k = %q", got)
		}
		if v, err := s.Cmd("GET", "missing"); err != nil || v != nil {
			t.Fatalf("GET missing = %#v, %v; want nil", v, err)
		}
		if _, err := s.Cmd("NOSUCHCOMMAND"); !errors.As(err, new(Error)) {
			t.Fatalf("unknown command: err = %v, want an Error reply", err)
		}
		if got := s.Do(t, "CONFIG", "GET", "save"); got != "save\n" {
			t.Fatalf("CONFIG GET save = %q, want persistence off", got)
		}

		// Paused: the port accepts, nothing answers; resumed: it does.
		s.Pause()
		if _, err := s.cmd(300*time.Millisecond, "PING"); err == nil {
			t.Fatal("paused server answered")
		}
		s.Resume()
		if got := s.Do(t, "PING"); got != "PONG" {
			t.Fatalf("PING after Resume = %q", got)
		}

		oldPID := s.PID()
		s.Kill()
		if !gone(oldPID) {
			t.Fatal("process still there after Kill")
		}
		if _, err := s.Cmd("PING"); err == nil {
			t.Fatal("killed server answered")
		}
		addr := s.Addr
		s.Restart(t)
		pids = append(pids, s.PID())
		if s.Addr != addr || s.PID() == oldPID {
			t.Fatalf("restart: addr %s pid %d, was %s pid %d", s.Addr, s.PID(), addr, oldPID)
		}
		if v, err := s.Cmd("GET", "k"); err != nil || v != nil {
			t.Fatalf("GET k after restart = %#v, %v; want empty server", v, err)
		}

		s.Do(t, "SET", "k", "v")
		s.Flush(t)
		if got := s.Do(t, "DBSIZE"); got != "0" {
			t.Fatalf("DBSIZE after Flush = %s", got)
		}

		pid := s.PID()
		s.Stop()
		if !gone(pid) {
			t.Fatal("process still there after Stop")
		}
		s.Restart(t)
		pids = append(pids, s.PID())
		// Left running: the cleanup must end it.
	})
	t.Run("password", func(t *testing.T) {
		s := Start(t, "--requirepass", "secret")
		pids = append(pids, s.PID())
		if got := s.Do(t, "PING"); got != "PONG" {
			t.Fatalf("PING with AUTH = %q", got)
		}
		anon := &Server{Addr: s.Addr}
		if _, err := anon.Cmd("PING"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Fatalf("PING without AUTH: %v, want NOAUTH", err)
		}
	})
	checkGone(t, pids)
}

func TestTLSAndACL(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("run", func(t *testing.T) {
		s := StartTLS(t)
		pids = append(pids, s.PID())
		if s.CAFile == "" || s.TLSConfig() == nil {
			t.Fatal("no CA file or TLS config")
		}
		if got := s.Do(t, "PING"); got != "PONG" {
			t.Fatalf("PING over TLS = %q", got)
		}
		if got := s.Do(t, "CONFIG", "GET", "port"); got != "port\n0" {
			t.Fatalf("CONFIG GET port = %q, want no plain port", got)
		}
		// Plain TCP to the TLS port gets no answer (the server waits for a
		// handshake, then drops the connection).
		plain := &Server{Addr: s.Addr}
		if _, err := plain.cmd(2*time.Second, "PING"); err == nil {
			t.Fatal("plain RESP on the TLS port answered")
		}
		// A client that does not trust the CA fails the handshake.
		stranger := &Server{Addr: s.Addr, tls: &tls.Config{MinVersion: tls.VersionTLS12}}
		if _, err := stranger.Cmd("PING"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("PING trusting the system roots only: %v, want a certificate error", err)
		}

		s.Do(t, "ACL", "SETUSER", "gw", "on", ">secret", "~gw:*", "&*", "+@all")
		s.Do(t, "ACL", "SETUSER", "default", "off")
		if _, err := s.Cmd("PING"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Fatalf("PING as the default user, now off: %v, want NOAUTH", err)
		}
		s.Auth("gw", "wrong")
		if _, err := s.Cmd("PING"); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("AUTH gw with a wrong password: %v, want WRONGPASS", err)
		}
		s.Auth("gw", "secret")
		if got := s.Do(t, "ACL", "WHOAMI"); got != "gw" {
			t.Fatalf("ACL WHOAMI = %q", got)
		}
		s.Do(t, "SET", "gw:k", "v")
		if _, err := s.Cmd("SET", "other:k", "v"); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Fatalf("SET outside ~gw:*: %v, want NOPERM", err)
		}
	})
	checkGone(t, pids)
}

func TestSlotOf(t *testing.T) {
	t.Parallel()
	if got := SlotOf("123456789"); got != 0x31C3%Slots {
		t.Errorf("SlotOf(123456789) = %d, want CRC16/XMODEM check value 0x31C3 = %d", got, 0x31C3%Slots)
	}
	// KEYSLOT needs cluster support, not a formed cluster.
	s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	for _, k := range []string{"", "a", "foo", "user:1000", "{user1000}.following", "{}x", "a{}b{c}", "x{y", "123456789"} {
		want, err := strconv.Atoi(s.Do(t, "CLUSTER", "KEYSLOT", k))
		if err != nil {
			t.Fatal(err)
		}
		if got := SlotOf(k); got != want {
			t.Errorf("SlotOf(%q) = %d, server says %d", k, got, want)
		}
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("run", func(t *testing.T) {
		c := StartCluster(t, 3)
		for _, n := range c.Nodes {
			pids = append(pids, n.PID())
		}
		const key = "{move}k"
		slot := SlotOf(key)
		src := c.NodeOfSlot(t, slot)
		c.Nodes[src].Do(t, "SET", key, "before")
		// A second key in the slot, so the move carries more than one.
		c.Nodes[src].Do(t, "SET", "{move}k2", "also")
		if _, err := c.Nodes[(src+1)%3].Cmd("GET", key); err == nil || !strings.HasPrefix(err.Error(), "MOVED "+strconv.Itoa(slot)) {
			t.Fatalf("GET on a non-owner: %v, want MOVED", err)
		}

		dst := (src + 1) % 3
		c.MoveSlot(t, slot, dst)
		if got := c.NodeOfSlot(t, slot); got != dst {
			t.Fatalf("after MoveSlot, slot %d on node %d, want %d", slot, got, dst)
		}
		if got := c.Nodes[dst].Do(t, "GET", key); got != "before" {
			t.Fatalf("GET %s on new owner = %q", key, got)
		}
		if got := c.Nodes[dst].Do(t, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot)); got != "2" {
			t.Fatalf("new owner has %s keys in the slot, want 2", got)
		}
		want := fmt.Sprintf("MOVED %d %s", slot, c.Addrs[dst])
		if _, err := c.Nodes[src].Cmd("GET", key); err == nil || err.Error() != want {
			t.Fatalf("GET on old owner: %v, want %s", err, want)
		}
	})
	checkGone(t, pids)
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	var pids []int
	t.Run("run", func(t *testing.T) {
		g := StartSentinel(t, "gw")
		for _, s := range append([]*Server{g.Master, g.Replica}, g.Sentinels...) {
			pids = append(pids, s.PID())
		}
		if len(g.Addrs) != 3 {
			t.Fatalf("%d sentinel addresses", len(g.Addrs))
		}
		g.Master.Do(t, "SET", "k", "v")
		waitFor(t, "replication of k", func() (bool, string) {
			v, err := g.Replica.TextCmd("GET", "k")
			return err == nil && v == "v", fmt.Sprint(v, err)
		})
		if _, err := g.Replica.Cmd("SET", "k", "w"); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
			t.Fatalf("SET on replica: %v, want READONLY", err)
		}

		old := g.Master
		g.Failover(t)
		if g.Replica != old {
			t.Fatal("Failover did not swap Master and Replica")
		}
		if got := g.Master.Do(t, "SET", "k", "after"); got != "OK" {
			t.Fatalf("SET on new master = %q", got)
		}
		for i, s := range g.Sentinels {
			if got, want := s.Do(t, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "gw"), "127.0.0.1\n"+strconv.Itoa(g.Master.Port); got != want {
				t.Fatalf("sentinel %d: master %q, want %q", i, got, want)
			}
		}
	})
	checkGone(t, pids)
}
