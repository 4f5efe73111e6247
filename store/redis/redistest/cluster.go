package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster is a real Redis Cluster on loopback, started from the installed
// redis-server and redis-cli for one test (or one package) and stopped at
// its cleanup. Nothing else uses it, so its tests need no prefix.
type Cluster struct {
	nodes []*Server
}

// usedPorts keeps the nodes of one test binary's clusters apart; other test
// binaries pick at random from the same range and are told apart by the
// listen check (and a retry if a port was taken meanwhile).
var usedPorts sync.Map

// clusterPort returns a loopback port P such that P and its cluster bus port
// P+10000 were both free a moment ago (P < 55535, so the bus port exists).
func clusterPort() (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(25000)
		if _, taken := usedPorts.LoadOrStore(p, true); taken {
			continue
		}
		free := true
		for _, q := range []int{p, p + 10000} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return p, nil
		}
	}
	return 0, errors.New("no free pair of ports for a cluster node")
}

// StartCluster starts masters×(1+replicas) redis-server processes with
// cluster mode on, joins them with redis-cli --cluster create (each master
// gets replicas replicas; a single master without replicas takes every
// slot itself) and waits until every node reports
// cluster_state:ok. Without redis-server the test is skipped, except
// under CI=true, where it fails. A short cluster-node-timeout makes a
// killed master's replica take over within a few seconds.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	server := serverBinary(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-cli is required under CI=true (run scripts/services.sh): %v", err)
		}
		t.Skipf("no redis-cli: %v", err)
	}
	c := &Cluster{}
	for range masters * (1 + replicas) {
		n, err := c.startNode(t, server)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	if masters == 1 && replicas == 0 {
		// redis-cli --cluster create wants three masters; one takes every
		// slot by itself.
		rdb := goredis.NewClient(&goredis.Options{Addr: c.nodes[0].Addr()})
		err := rdb.Do(context.Background(), "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err()
		rdb.Close()
		if err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
		c.WaitOK(t, 30*time.Second)
		return c
	}
	if masters < 3 {
		t.Fatalf("StartCluster: %d masters; one, or three and more", masters)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(t, 30*time.Second)
	return c
}

// startNode starts one cluster-enabled redis-server on a fresh port pair,
// trying another pair if the server could not start (another package took
// a port between the check and the start).
func (c *Cluster) startNode(t testing.TB, server string) (*Server, error) {
	var lastErr error
	for range 5 {
		port, err := clusterPort()
		if err != nil {
			return nil, err
		}
		dir := t.TempDir()
		n, err := startServer(t, server, port, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "1000", "--dir", dir,
			// A replica takes over however long ago it last heard its
			// master: on a loaded machine its link may be younger than
			// the validity window when the test kills the master.
			"--cluster-replica-validity-factor", "0")
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// Addrs returns the addresses of the nodes still running.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n.Addr())
		}
	}
	return out
}

// URL is the cluster's address in the form quotehub's redis-url takes with
// redis-cluster=true: redis://first?addr=second&addr=third…
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + a
	}
	return u
}

// Client returns a cluster client of c, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *goredis.ClusterClient {
	t.Helper()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// WaitOK waits until every running node reports cluster_state:ok and
// agrees on who serves every slot.
func (c *Cluster) WaitOK(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := c.check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis Cluster not ok after %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) check() error {
	ctx := context.Background()
	var first string
	for _, a := range c.Addrs() {
		rdb := goredis.NewClient(&goredis.Options{Addr: a, MaxRetries: -1})
		info, err := rdb.ClusterInfo(ctx).Result()
		var slots []goredis.ClusterSlot
		if err == nil {
			slots, err = rdb.ClusterSlots(ctx).Result() //nolint:staticcheck // SA1019: CLUSTER SLOTS is what go-redis routes by
		}
		rdb.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: not cluster_state:ok", a)
		}
		if err := replicaLinked(ctx, a); err != nil {
			return err
		}
		view := slotMasters(slots)
		if first == "" {
			first = view
		} else if view != first {
			return fmt.Errorf("%s: sees other slot owners", a)
		}
	}
	return nil
}

// slotMasters renders which master serves which slot range, to compare the
// views of the nodes.
func slotMasters(slots []goredis.ClusterSlot) string {
	var b strings.Builder
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			fmt.Fprintf(&b, "%d-%d:%s ", s.Start, s.End, s.Nodes[0].Addr)
		}
	}
	return b.String()
}

// MasterOf returns the address of the master that serves key's slot now.
func (c *Cluster) MasterOf(t testing.TB, key string) string {
	t.Helper()
	addr, err := c.masterOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func (c *Cluster) masterOf(key string) (string, error) {
	ctx := context.Background()
	rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: c.Addrs(), MaxRetries: -1})
	defer rdb.Close()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := rdb.ClusterSlots(ctx).Result() //nolint:staticcheck // SA1019: CLUSTER SLOTS is what go-redis routes by
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("no master serves the slot of %s", key)
}

// WaitPromoted waits until a master other than old serves key's slot (a
// replica took over) and the cluster is ok again.
func (c *Cluster) WaitPromoted(t testing.TB, key, old string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if addr, err := c.masterOf(key); err == nil && addr != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica took over the slot of %s from %s within %v", key, old, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.WaitOK(t, time.Until(deadline)+time.Second)
}

// Kill stops the node at addr with SIGKILL, as a crash would.
func (c *Cluster) Kill(t testing.TB, addr string) {
	t.Helper()
	for _, n := range c.nodes {
		if n.Addr() == addr {
			n.Kill()
			return
		}
	}
	t.Fatalf("no cluster node at %s", addr)
}

// replicaLinked reports an error for a replica whose link to its master is
// not up yet (its first sync is still running): it could not take over.
func replicaLinked(ctx context.Context, addr string) error {
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if strings.Contains(info, "role:slave") && !strings.Contains(info, "master_link_status:up") {
		return fmt.Errorf("%s: replica not linked to its master yet", addr)
	}
	return nil
}
