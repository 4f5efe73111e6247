package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"quotehub/internal/poll"
)

// The operator's status on the admin listener shows this node's
// connections, subscriptions, the cluster's active set, its leases and
// breakers, and its configuration without secrets.
func TestAdminStatus(t *testing.T) {
	url, prefix, _ := sharedRedis(t)
	n := startNode(t, map[string]string{"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix, "QUOTEHUB_REFRESH_SLOTS": "8"})
	c := dialWS(t, n, "", nil)
	c.next("welcome")
	c.send(symbolsFrame("subscribe", "s1", []string{"KRW-BTC"}))
	c.next("subscribed")
	admin := httptest.NewServer(n.statusHandler(n.cfg, time.Now().Add(-time.Minute), n.reg))
	defer admin.Close()

	var st nodeStatus
	poll.Until(t, 5*time.Second, "a status with the subscription, the active symbol and the leases", func() bool {
		st = nodeStatus{}
		getJSON(t, admin.URL+"/status", &st)
		return len(st.Subscribed) == 1 && len(st.Active) > 0 && st.Leases != nil && len(st.Leases.Held) > 0
	})
	if st.Node != "node-test" || st.Connections["ws"] != 1 || st.Build.Go == "" || st.Uptime != "1m0s" {
		t.Errorf("node %q, connections %v, build %+v, uptime %s", st.Node, st.Connections, st.Build, st.Uptime)
	}
	if got := st.Subscribed[0]; got.Symbol != "KRW-BTC" || got.Subscribers != 1 {
		t.Errorf("subscribed %+v, want KRW-BTC with 1", got)
	}
	if a := st.Active[0]; a.Symbol != "KRW-BTC" || time.Since(a.At) > time.Minute {
		t.Errorf("active %+v, want KRW-BTC touched just now", a)
	}
	if st.Leases.Slots != 8 || len(st.Leases.Held) != 8 || !slices.IsSorted(st.Leases.Held) {
		t.Errorf("leases %+v, want all 8 slots held by the only node", st.Leases)
	}
	if len(st.Breakers) == 0 {
		t.Error("no breaker states")
	}
	for p, s := range st.Breakers {
		if s != "closed" {
			t.Errorf("breaker of %s is %s, want closed", p, s)
		}
	}
	if st.Config["RedisPrefix"] != prefix || len(st.NotReady) != 0 {
		t.Errorf("config RedisPrefix %v, not ready %v", st.Config["RedisPrefix"], st.NotReady)
	}
}

func TestStatusRedactsSecrets(t *testing.T) {
	cfg := Config{RedisURL: "redis://user:hunter2@redis:6379/0", RedisPrefix: "qh:", NodeID: "a"}
	got := redacted(cfg)
	if u := got["RedisURL"].(string); strings.Contains(u, "hunter2") || !strings.Contains(u, "user:redacted@redis:6379") {
		t.Errorf("RedisURL %q", u)
	}
	if got["RedisPrefix"] != "qh:" || got["NodeID"] != "a" {
		t.Errorf("plain settings changed: %v %v", got["RedisPrefix"], got["NodeID"])
	}
	for name, secret := range map[string]bool{"JWTSecret": true, "MySQLDSN": true, "Plain": false, "RedisURL": false} {
		if secretName.MatchString(name) != secret {
			t.Errorf("%s counted as a secret: %v", name, !secret)
		}
	}
}

func TestAdminStatusNotOnThePublicPort(t *testing.T) {
	n := startNode(t, nil)
	resp, err := http.Get(n.url("/status"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public /status: %d, want 404", resp.StatusCode)
	}
}
