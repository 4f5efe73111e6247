package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub/internal/poll"
)

// TestCostFollowsActiveSet: with 10,000 extra symbols in the catalogue and
// 3 watched, only those 3 are ever fetched, and they stop being fetched
// once nobody has watched them for the active window.
func TestCostFollowsActiveSet(t *testing.T) {
	n := startNode(t, map[string]string{
		"QUOTEHUB_SIM_SYMBOLS": "10000", "QUOTEHUB_REFRESH_INTERVAL": "20ms",
		"QUOTEHUB_ACTIVE_WINDOW": "500ms", "QUOTEHUB_HEARTBEAT": "100ms",
	})
	watched := []string{"SYN-000042", "SYN-004242", "KRW-BTC"}
	c := dialWS(t, n, "?symbols="+strings.Join(watched, ","), nil)
	c.next("welcome")
	c.next("subscribed")
	// Fetched for longer than the window: at a 20 ms interval, 40 fetches
	// of a symbol take at least 780 ms, which only heartbeats can keep it
	// active for (the window is 500 ms).
	start := time.Now()
	poll.Until(t, 10*time.Second, "40 fetches of each watched symbol", func() bool {
		for _, s := range watched {
			if n.sim().FetchCount(s) < 40 {
				return false
			}
		}
		return true
	})
	t.Logf("40 fetches of each watched symbol took %v", time.Since(start))
	got := n.sim().FetchedSymbols()
	sort.Strings(got)
	want := append([]string(nil), watched...)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fetched %v, want exactly %v", got, want)
	}
	if a := n.metric("quotehub_active_symbols", "scope", "cluster"); a != 3 {
		t.Errorf("active symbols = %v, want 3", a)
	}
	c.send(symbolsFrame("unsubscribe", "bye", watched))
	c.next("unsubscribed")
	// Still active within the window after the last subscriber left: it
	// has 400–500 ms left, time for some 20 more fetches...
	mid := n.sim().FetchCount("KRW-BTC")
	poll.Until(t, 5*time.Second, "KRW-BTC refreshed after its last subscriber left", func() bool {
		return n.sim().FetchCount("KRW-BTC") >= mid+5
	})
	// ...and dropped after it: the cluster's active set empties. A canary
	// subscribed then marks refresh rounds: once it has been fetched, the
	// rounds that could still fetch the others are over, and a few more
	// show that nothing fetches them.
	poll.Until(t, 5*time.Second, "the active set to empty", func() bool {
		return n.metric("quotehub_active_symbols", "scope", "cluster") == 0
	})
	const canary = "SYN-000007"
	c.send(symbolsFrame("subscribe", "canary", []string{canary}))
	c.next("subscribed")
	canaryFetches := func(k int64) {
		poll.Until(t, 5*time.Second, fmt.Sprintf("%d fetches of the canary", k), func() bool {
			return n.sim().FetchCount(canary) >= k
		})
	}
	canaryFetches(3)
	after := map[string]int64{}
	for _, s := range watched {
		after[s] = n.sim().FetchCount(s)
	}
	canaryFetches(n.sim().FetchCount(canary) + 5)
	for _, s := range watched {
		if k := n.sim().FetchCount(s); k != after[s] {
			t.Errorf("%s still fetched after the window: %d → %d", s, after[s], k)
		}
	}
	watched = append(watched, canary)
	if got := len(n.sim().FetchedSymbols()); got != len(watched) {
		t.Errorf("%d symbols fetched in all, want %d", got, len(watched))
	}
}

// TestChurnLeavesNothing connects, subscribes and disconnects many WebSocket
// and SSE clients, then checks the node is back to its idle goroutines.
func TestChurnLeavesNothing(t *testing.T) {
	n := startNode(t, nil)
	warm := func() {
		c := dialWS(t, n, "?symbols=KRW-BTC", nil)
		c.next("welcome")
		c.next("subscribed")
		c.conn.Close(websocket.StatusNormalClosure, "")
		poll.Until(t, 5*time.Second, "idle", func() bool { return n.hub.Connections() == 0 })
	}
	warm()
	// The baseline is taken once the warm-up connection's goroutines, the
	// client's and the server's, have ended.
	http.DefaultClient.CloseIdleConnections()
	poll.Until(t, 5*time.Second, "the warm-up connection's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return !bytes.Contains(buf, []byte("github.com/coder/websocket.")) && !bytes.Contains(buf, []byte("net/http.(*conn).serve("))
	})
	base := runtime.NumGoroutine()
	for i := range 150 {
		c := dialWS(t, n, "?symbols=KRW-BTC,KRW-ETH,AAPL", nil)
		c.next("welcome")
		c.next("subscribed")
		if i%2 == 0 {
			c.conn.Close(websocket.StatusNormalClosure, "")
		} else {
			c.conn.CloseNow()
		}
		s := openSSE(t, n, "?symbols=KRW-BTC", nil)
		s.next(5 * time.Second)
		s.close()
	}
	poll.Until(t, 10*time.Second, "connections to drain", func() bool {
		return n.hub.Connections() == 0 && n.metric("quotehub_subscriptions") == 0
	})
	http.DefaultClient.CloseIdleConnections()
	poll.Until(t, 10*time.Second, fmt.Sprintf("goroutines back to %d", base), func() bool {
		return runtime.NumGoroutine() <= base+2
	})
}

// TestRunShutdown runs the whole binary's Run: a signal (context end) closes
// every WebSocket with 1001, ends every SSE stream, and Run returns well
// within the shutdown timeout. goleak (TestMain) checks nothing is left.
func TestRunShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"QUOTEHUB_ADDR": "127.0.0.1:0", "QUOTEHUB_ADMIN_ADDR": "127.0.0.1:0", "QUOTEHUB_LOG_FORMAT": "json",
		"QUOTEHUB_REFRESH_INTERVAL": "50ms", "QUOTEHUB_DATA_DIR": t.TempDir()}
	ready := make(chan string, 1)
	runErr := make(chan error, 1)
	go func() { runErr <- Run(ctx, nil, mapEnv(env), io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-runErr:
		t.Fatal(err)
	}
	n := &testNode{t: t, addr: addr}
	var clients []*wsClient
	for range 5 {
		c := dialWS(t, n, "?symbols=KRW-BTC", nil)
		c.next("welcome")
		c.next("subscribed")
		clients = append(clients, c)
	}
	s := openSSE(t, n, "?symbols=KRW-BTC", nil)
	s.next(5 * time.Second)
	start := time.Now()
	cancel()
	for _, c := range clients {
		if code := c.closeStatus(10 * time.Second); code != websocket.StatusGoingAway {
			t.Errorf("close = %v, want 1001", code)
		}
	}
	for {
		if _, ok := s.next(10 * time.Second); !ok {
			break // the stream ended
		}
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the signal")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still accepting after shutdown")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	env := map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "soon"}
	err := Run(context.Background(), nil, mapEnv(env), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "QUOTEHUB_REFRESH_INTERVAL") {
		t.Fatalf("Run = %v", err)
	}
	env = map[string]string{"QUOTEHUB_ADDR": "256.0.0.1:1"}
	if err := Run(context.Background(), nil, mapEnv(env), io.Discard, nil); err == nil {
		t.Fatal("Run listened on an impossible address")
	}
}
