package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Sentinel is a master, one replica and three sentinels monitoring them
// under MasterName with a quorum of 2.
type Sentinel struct {
	Master, Replica *Server
	Sentinels       []*Server
	Addrs           []string // the sentinels' addresses
	MasterName      string
}

// StartSentinel starts a master, a replica of it and three sentinels
// (down-after 1 s, failover-timeout 5 s), and waits until every sentinel
// knows the master, sees the replica online with its link to the master
// up, and knows the other two sentinels (which a failover's new
// configuration travels through).
func StartSentinel(t testing.TB, masterName string) *Sentinel {
	t.Helper()
	bin := Need(t, "redis-sentinel")
	g := &Sentinel{MasterName: masterName}
	g.Master = Start(t)
	g.Replica = Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(g.Master.Port))
	// A sentinel learns of replicas from the master's INFO, which it asks
	// for at once and then only every 10 s: the replica must be attached
	// before the sentinels start.
	waitFor(t, "replica linked to master", func() (bool, string) {
		info, err := g.Replica.TextCmd("INFO", "replication")
		return err == nil && strings.Contains(info, "master_link_status:up\r\n"), fmt.Sprint(info, err)
	})
	for range 3 {
		dir := mkdir(t, "sentinel")
		conf := filepath.Join(dir, "sentinel.conf")
		s := launch(t, dir, func(port int) ([]string, error) {
			// Sentinel rewrites this file (its ID, what it learns), so it is
			// a writable file of its own, not a read-only fixture.
			cfg := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
`, port, dir, masterName, g.Master.Port)
			return []string{bin, conf}, os.WriteFile(conf, []byte(cfg), 0o644)
		})
		g.Sentinels = append(g.Sentinels, s)
		g.Addrs = append(g.Addrs, s.Addr)
	}
	waitFor(t, "sentinels know master, replica and each other", func() (bool, string) {
		for i, s := range g.Sentinels {
			if ok, why := g.knows(s); !ok {
				return false, fmt.Sprintf("sentinel %d (%s): %s", i, s.Addr, why)
			}
		}
		return true, ""
	})
	return g
}

// knows reports whether sentinel s has the master at its address, the
// replica online, and both other sentinels.
func (g *Sentinel) knows(s *Server) (bool, string) {
	addr, err := s.TextCmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName)
	if err != nil {
		return false, err.Error()
	}
	if want := "127.0.0.1\n" + strconv.Itoa(g.Master.Port); addr != want {
		return false, fmt.Sprintf("master %q, want %q", addr, want)
	}
	v, err := s.Cmd("SENTINEL", "REPLICAS", g.MasterName)
	if err != nil {
		return false, err.Error()
	}
	online := false
	for _, r := range pairsList(v) {
		if r["port"] == strconv.Itoa(g.Replica.Port) && r["flags"] == "slave" && r["master-link-status"] == "ok" {
			online = true
		}
	}
	if !online {
		return false, fmt.Sprintf("replica %s not online: %v", g.Replica.Addr, pairsList(v))
	}
	v, err = s.Cmd("SENTINEL", "SENTINELS", g.MasterName)
	if err != nil {
		return false, err.Error()
	}
	if n := len(pairsList(v)); n != len(g.Sentinels)-1 {
		return false, fmt.Sprintf("knows %d other sentinels", n)
	}
	return true, ""
}

// pairsList turns an array of flat field/value arrays (SENTINEL REPLICAS,
// SENTINEL SENTINELS) into maps.
func pairsList(v any) []map[string]string {
	var out []map[string]string
	list, _ := v.([]any)
	for _, e := range list {
		kv, _ := e.([]any)
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[Text(kv[i])] = Text(kv[i+1])
		}
		out = append(out, m)
	}
	return out
}

// Failover forces a failover (SENTINEL FAILOVER on the first sentinel)
// and waits until every sentinel names the former replica as master and
// it answers ROLE as a master. Master and Replica are then swapped; the
// sentinels turn the former master into a replica in their own time,
// which this does not wait for.
func (g *Sentinel) Failover(t testing.TB) {
	t.Helper()
	waitFor(t, "failover accepted", func() (bool, string) {
		_, err := g.Sentinels[0].Cmd("SENTINEL", "FAILOVER", g.MasterName)
		// NOGOODSLAVE: the sentinel has not yet judged the replica fit
		// (fresh enough INFO); asking again later may succeed.
		if err != nil && strings.HasPrefix(err.Error(), "NOGOODSLAVE") {
			return false, err.Error()
		}
		if err != nil {
			t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", g.MasterName, err)
		}
		return true, ""
	})
	want := "127.0.0.1\n" + strconv.Itoa(g.Replica.Port)
	waitFor(t, "failover to "+g.Replica.Addr, func() (bool, string) {
		for i, s := range g.Sentinels {
			addr, err := s.TextCmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName)
			if err != nil || addr != want {
				return false, fmt.Sprintf("sentinel %d says %q (%v)", i, addr, err)
			}
		}
		v, err := g.Replica.Cmd("ROLE")
		role, _ := v.([]any)
		if err != nil || len(role) == 0 || Text(role[0]) != "master" {
			return false, fmt.Sprintf("ROLE of %s: %v %v", g.Replica.Addr, v, err)
		}
		return true, ""
	})
	g.Master, g.Replica = g.Replica, g.Master
}
