package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// waitFor polls cond until it holds, failing t after Timeout with what
// and cond's last explanation of why it did not hold yet.
func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s: not within %v: %s", what, Timeout, why)
		}
		time.Sleep(delay)
	}
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
	Addrs []string
	IDs   []string // node IDs (CLUSTER MYID), by index
}

// StartCluster starts n (at least 3) cluster-enabled masters, joins them
// with redis-cli --cluster create, which spreads the slots evenly, and
// waits until every node reports the cluster ok with all slots assigned
// and knows every other node.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, not %d", n)
	}
	cli := Need(t, "redis-cli")
	c := &Cluster{}
	for range n {
		s := Start(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // relative to the node's own --dir
			"--cluster-node-timeout", "2000",
		)
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
		c.IDs = append(c.IDs, s.Do(t, "CLUSTER", "MYID"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s%s", strings.Join(args, " "), err, out, c.logs())
	}
	c.waitHealthy(t, "cluster formed")
	return c
}

func (c *Cluster) logs() string {
	var b strings.Builder
	for _, s := range c.Nodes {
		b.WriteString("\n" + s.LogTail())
	}
	return b.String()
}

// waitHealthy waits until every node says cluster_state:ok, all slots
// assigned, and knows all the nodes.
func (c *Cluster) waitHealthy(t testing.TB, what string) {
	t.Helper()
	want := []string{
		"cluster_state:ok",
		"cluster_slots_assigned:" + strconv.Itoa(Slots),
		"cluster_slots_ok:" + strconv.Itoa(Slots),
		"cluster_known_nodes:" + strconv.Itoa(len(c.Nodes)),
	}
	waitFor(t, what, func() (bool, string) {
		for i, s := range c.Nodes {
			info, err := s.TextCmd("CLUSTER", "INFO")
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", i, err)
			}
			for _, w := range want {
				if !strings.Contains(info, w+"\r\n") {
					return false, fmt.Sprintf("node %d (%s) lacks %s:\n%s", i, s.Addr, w, info)
				}
			}
		}
		return true, ""
	})
}

// SlotOf returns the hash slot of key: CRC16 (XMODEM) of the key, or of
// its hash tag (the part between the first { and the next }, if not
// empty), modulo 16384.
func SlotOf(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % Slots
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// clusterView is one node's CLUSTER NODES: who owns the slot asked about,
// and whether any node is marked migrating or importing it.
func clusterView(s *Server, slot int) (owner string, moving bool, err error) {
	text, err := s.TextCmd("CLUSTER", "NODES")
	if err != nil {
		return "", false, err
	}
	marker := "[" + strconv.Itoa(slot) + "-"
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				moving = moving || strings.HasPrefix(r, marker)
				continue
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= slot && slot <= b {
				owner = f[0]
			}
		}
	}
	return owner, moving, nil
}

func (c *Cluster) index(id string) int {
	for i, x := range c.IDs {
		if x == id {
			return i
		}
	}
	return -1
}

// NodeOfSlot returns the index of the node serving slot, once every node
// agrees on it.
func (c *Cluster) NodeOfSlot(t testing.TB, slot int) int {
	t.Helper()
	owner := -1
	waitFor(t, fmt.Sprintf("nodes agree on the owner of slot %d", slot), func() (bool, string) {
		var first string
		for i, s := range c.Nodes {
			id, _, err := clusterView(s, slot)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", i, err)
			}
			if id == "" {
				return false, fmt.Sprintf("node %d knows no owner", i)
			}
			if i == 0 {
				first = id
			} else if id != first {
				return false, fmt.Sprintf("node 0 says %s, node %d says %s", first, i, id)
			}
		}
		owner = c.index(first)
		return owner >= 0, "owner " + first + " is no node of ours"
	})
	return owner
}

// MoveSlot moves slot, with its keys, to node dst by the documented
// manual resharding steps: the destination IMPORTING, the source
// MIGRATING, MIGRATE of the slot's keys in batches, then SETSLOT NODE on
// the destination, the source and the other masters. It returns once
// every node says dst owns the slot, none has it marked as moving, and
// the cluster is ok.
func (c *Cluster) MoveSlot(t testing.TB, slot int, dst int) {
	t.Helper()
	src := c.NodeOfSlot(t, slot)
	if src == dst {
		return
	}
	s, d := c.Nodes[src], c.Nodes[dst]
	n := strconv.Itoa(slot)
	d.Do(t, "CLUSTER", "SETSLOT", n, "IMPORTING", c.IDs[src])
	s.Do(t, "CLUSTER", "SETSLOT", n, "MIGRATING", c.IDs[dst])
	for {
		v, err := s.Cmd("CLUSTER", "GETKEYSINSLOT", n, "100")
		if err != nil {
			t.Fatalf("redistest: GETKEYSINSLOT %d on %s: %v", slot, s.Addr, err)
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(d.Port), "", "0", "10000", "KEYS"}
		for _, k := range keys {
			args = append(args, Text(k))
		}
		s.Do(t, args...)
	}
	d.Do(t, "CLUSTER", "SETSLOT", n, "NODE", c.IDs[dst])
	s.Do(t, "CLUSTER", "SETSLOT", n, "NODE", c.IDs[dst])
	for i, o := range c.Nodes {
		if i != src && i != dst {
			o.Do(t, "CLUSTER", "SETSLOT", n, "NODE", c.IDs[dst])
		}
	}
	waitFor(t, fmt.Sprintf("slot %d moved to node %d", slot, dst), func() (bool, string) {
		for i, o := range c.Nodes {
			id, moving, err := clusterView(o, slot)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", i, err)
			}
			if id != c.IDs[dst] || moving {
				return false, fmt.Sprintf("node %d says owner %s, moving %v", i, id, moving)
			}
		}
		return true, ""
	})
	c.waitHealthy(t, fmt.Sprintf("cluster ok after moving slot %d", slot))
}
