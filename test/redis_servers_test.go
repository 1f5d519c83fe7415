package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisNode is one redis-server process of a test's own topology (a
// Cluster node, a Sentinel master or replica, a sentinel) on a free loopback
// port. Its output is kept for the failure message.
type redisNode struct {
	t    *testing.T
	addr string
	port string
	cmd  *exec.Cmd
	out  *syncBuffer
	mu   sync.Mutex
	dead bool
}

// startRedisNode runs redis-server on addr (a loopback address of
// freeAddrs) with args before the port and bind options, and waits until
// it answers PING. Cleanup kills it, also when the test fails half-way. A
// missing binary fails the test: the topology tests are never skipped.
func startRedisNode(t *testing.T, addr string, args ...string) *redisNode {
	t.Helper()
	n := &redisNode{t: t, addr: addr, out: &syncBuffer{}}
	_, n.port, _ = net.SplitHostPort(n.addr)
	n.cmd = exec.Command("redis-server", args...)
	n.cmd.Args = append(n.cmd.Args, "--port", n.port, "--bind", "127.0.0.1")
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v (scripts/ensure-redis.sh installs it)", err)
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("redis-server %s output (last 3000 bytes):\n%s", n.addr, tail(n.out.String(), 3000))
		}
	})
	c := n.client()
	defer c.Close()
	eventually(t, 10*time.Second, "redis-server "+n.addr+" answers", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
	return n
}

// client is a plain single-node client of the node, for the test's own
// inspection (never for finproxy's traffic).
func (n *redisNode) client() *redis.Client {
	// RESP2: SENTINEL's replies are flat lists, whatever the protocol
	// default of go-redis.
	return redis.NewClient(&redis.Options{Addr: n.addr, Protocol: 2, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
}

// kill is SIGKILL: a crash, no shutdown, no last replication.
func (n *redisNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dead {
		return
	}
	n.dead = true
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
}

// info returns field of INFO section, or "" when the node does not answer.
func (n *redisNode) info(section, field string) string {
	c := n.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	return infoField(s, field)
}

// infoField is field's value in an INFO-style reply.
func infoField(s, field string) string {
	for _, l := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// dataNode is the arguments of a node that holds data in dir, a directory
// of its own (a replica's full sync lands in dump.rdb there, which two
// nodes must not share), with nothing persisted, and extra.
func dataNode(dir string, extra ...string) []string {
	// No delay before a full sync: a replica is in sync, and so can be
	// promoted, within a second of its start instead of five.
	return append([]string{"--save", "", "--appendonly", "no", "--dir", dir, "--repl-diskless-sync-delay", "0"}, extra...)
}

// redisCluster is a Redis Cluster of the test's own: masters, each with
// its replicas, on loopback.
type redisCluster struct {
	t     *testing.T
	nodes []*redisNode
}

// startRedisCluster starts masters×(1+replicas) cluster-enabled nodes,
// joins them with redis-cli --cluster create and waits until every node
// says cluster_state:ok and knows every other node. A node timeout of one
// second makes a dead master's failover take seconds, not the default 15.
func startRedisCluster(t *testing.T, masters, replicas int) *redisCluster {
	t.Helper()
	rc := &redisCluster{t: t}
	addrs := freeAddrs(t, masters*(1+replicas))
	for _, addr := range addrs {
		_, port, _ := net.SplitHostPort(addr)
		dir := t.TempDir()
		rc.nodes = append(rc.nodes, startRedisNode(t, addr, dataNode(dir, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"), "--cluster-node-timeout", "1000")...))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// A replica that has not completed its first sync cannot be promoted:
	// a master killed before then would leave its slots down for good.
	eventually(t, 20*time.Second, "cluster_state:ok on every node, every replica in sync", func() bool {
		for _, n := range rc.nodes {
			if clusterInfo(n, "cluster_state") != "ok" || clusterInfo(n, "cluster_known_nodes") != fmt.Sprint(len(rc.nodes)) {
				return false
			}
			if n.info("replication", "role") == "slave" && n.info("replication", "master_link_status") != "up" {
				return false
			}
		}
		return true
	})
	return rc
}

// clusterInfo returns field of n's CLUSTER INFO, or "" when n does not
// answer.
func clusterInfo(n *redisNode, field string) string {
	c := n.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return ""
	}
	return infoField(s, field)
}

// url is FINPROXY_REDIS_URL in go-redis's cluster form, every node a seed
// (any one of them is enough to read the slot map from).
func (rc *redisCluster) url() string {
	var b strings.Builder
	for i, n := range rc.nodes {
		switch {
		case i == 0:
			b.WriteString("redis://" + n.addr)
		case i == 1:
			b.WriteString("?addr=" + n.addr)
		default:
			b.WriteString("&addr=" + n.addr)
		}
	}
	return b.String()
}

// owner returns the live node that serves slot as master, as the nodes
// that are alive see it.
func (rc *redisCluster) owner(slot int) *redisNode {
	for _, n := range rc.live() {
		slots, err := slotOwners(n)
		if err != nil {
			continue
		}
		for _, s := range slots {
			if slot >= s.start && slot <= s.end && s.master != "" {
				return rc.byAddr(s.master)
			}
		}
	}
	return nil
}

// slotRange is a range of slots and the address of the master serving
// it ("" when its shard has no online master), as node n sees it.
type slotRange struct {
	start, end int
	master     string
}

func slotOwners(n *redisNode) ([]slotRange, error) {
	c := n.client()
	defer c.Close()
	shards, err := c.ClusterShards(context.Background()).Result()
	if err != nil {
		return nil, err
	}
	var out []slotRange
	for _, sh := range shards {
		master := ""
		for _, node := range sh.Nodes {
			if node.Role == "master" && node.Health == "online" {
				master = net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10))
			}
		}
		for _, r := range sh.Slots {
			out = append(out, slotRange{int(r.Start), int(r.End), master})
		}
	}
	return out, nil
}

func (rc *redisCluster) byAddr(addr string) *redisNode {
	for _, n := range rc.nodes {
		if n.addr == addr {
			return n
		}
	}
	return nil
}

func (rc *redisCluster) live() []*redisNode {
	var out []*redisNode
	for _, n := range rc.nodes {
		n.mu.Lock()
		if !n.dead {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// healthy reports whether every live node says cluster_state:ok and the
// slots are served by want masters, all of them alive.
func (rc *redisCluster) healthy(want int) bool {
	live := rc.live()
	for _, n := range live {
		if clusterInfo(n, "cluster_state") != "ok" {
			return false
		}
	}
	for _, n := range live {
		slots, err := slotOwners(n)
		if err != nil {
			return false
		}
		owners := map[string]bool{}
		for _, s := range slots {
			if s.master == "" || rc.byAddr(s.master) == nil || !slices.Contains(live, rc.byAddr(s.master)) {
				return false
			}
			owners[s.master] = true
		}
		if len(owners) != want {
			return false
		}
	}
	return true
}

// redisSentinel is a monitored master with replicas and a quorum of
// sentinels, all on loopback.
type redisSentinel struct {
	t         *testing.T
	name      string
	data      []*redisNode // master first, as started
	sentinels []*redisNode
}

// startRedisSentinel starts a master, replicas replicating it, and
// sentinels monitoring it under name with a quorum of a majority, and waits
// until every sentinel knows every replica and every other sentinel (a
// failover before that elects nobody). One second down-after and a five
// second failover timeout keep a failover within seconds.
func startRedisSentinel(t *testing.T, name string, replicas, sentinels int) *redisSentinel {
	t.Helper()
	rs := &redisSentinel{t: t, name: name}
	addrs := freeAddrs(t, 1+replicas+sentinels)
	master := startRedisNode(t, addrs[0], dataNode(t.TempDir())...)
	rs.data = append(rs.data, master)
	for _, addr := range addrs[1 : 1+replicas] {
		rs.data = append(rs.data, startRedisNode(t, addr, dataNode(t.TempDir(), "--replicaof", "127.0.0.1", master.port)...))
	}
	for _, addr := range addrs[1+replicas:] {
		// A sentinel rewrites its config file (its peers, the current
		// master), so each has a writable one of its own.
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("dir %s\nsentinel monitor %s 127.0.0.1 %s %d\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			dir, name, master.port, sentinels/2+1, name, name)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		rs.sentinels = append(rs.sentinels, startRedisNode(t, addr, conf, "--sentinel"))
	}
	eventually(t, 20*time.Second, "replicas in sync, every sentinel knowing every replica and peer", func() bool {
		for _, r := range rs.data[1:] {
			if r.info("replication", "master_link_status") != "up" {
				return false
			}
		}
		for _, s := range rs.sentinels {
			c := s.client()
			ctx := context.Background()
			reps, err1 := c.Do(ctx, "SENTINEL", "REPLICAS", name).Slice()
			peers, err2 := c.Do(ctx, "SENTINEL", "SENTINELS", name).Slice()
			c.Close()
			if err1 != nil || err2 != nil || len(reps) != replicas || len(peers) != sentinels-1 {
				return false
			}
		}
		return true
	})
	return rs
}

// url is FINPROXY_REDIS_URL in go-redis's Sentinel form.
func (rs *redisSentinel) url() string {
	u := "redis://" + rs.sentinels[0].addr + "?master_name=" + rs.name
	for _, s := range rs.sentinels[1:] {
		u += "&addr=" + s.addr
	}
	return u
}

// masterAddr is what every sentinel answers for the master, or "" while
// they disagree or do not answer.
func (rs *redisSentinel) masterAddr() string {
	var agreed string
	for _, s := range rs.sentinels {
		c := s.client()
		addr, err := c.Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", rs.name).StringSlice()
		c.Close()
		if err != nil || len(addr) != 2 {
			return ""
		}
		a := net.JoinHostPort(addr[0], addr[1])
		if agreed != "" && a != agreed {
			return ""
		}
		agreed = a
	}
	return agreed
}

func (rs *redisSentinel) byAddr(addr string) *redisNode {
	for _, n := range rs.data {
		if n.addr == addr {
			return n
		}
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
