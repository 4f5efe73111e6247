package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub/internal/poll"
)

// recording is one client's log of the quotes it received.
type recording struct {
	mu     sync.Mutex
	seqs   map[string][]uint64
	times  map[string][]time.Time
	lat    []float64 // receive − fetched_at, ms
	errors []string
}

// record subscribes a WebSocket client on p to syms and records every
// quote until ctx ends; it flags any seq that does not increase.
func record(ctx context.Context, t *testing.T, p *proc, syms []string) *recording {
	t.Helper()
	r := &recording{seqs: map[string][]uint64{}, times: map[string][]time.Time{}}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, "ws://"+p.addr+"/v1/ws?symbols="+strings.Join(syms, ","), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", p.name, err)
	}
	conn.SetReadLimit(1 << 22)
	go func() {
		defer conn.CloseNow()
		snap := map[string]bool{}
		for _, s := range syms {
			snap[s] = true
		}
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			var f frame
			if json := decodeFrame(data, &f); json != nil || f.Type != "quotes" {
				continue
			}
			r.mu.Lock()
			for _, q := range f.Quotes {
				sym := q["symbol"].(string)
				seq := uint64(q["seq"].(float64))
				if prev := r.seqs[sym]; len(prev) > 0 && (seq < prev[len(prev)-1] || seq == prev[len(prev)-1] && !snap[sym]) {
					r.errors = append(r.errors, fmt.Sprintf("%s on %s: seq %d after %d", sym, p.name, seq, prev[len(prev)-1]))
				}
				if !snap[sym] { // a snapshot's fetched_at is as old as the value
					r.lat = append(r.lat, float64(now.UnixMicro())/1000-q["fetched_at"].(float64))
				}
				delete(snap, sym)
				r.seqs[sym] = append(r.seqs[sym], seq)
				r.times[sym] = append(r.times[sym], now)
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recording) snapshot() (map[string][]uint64, map[string][]time.Time, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seqs, times := map[string][]uint64{}, map[string][]time.Time{}
	for k, v := range r.seqs {
		seqs[k] = slices.Clone(v)
	}
	for k, v := range r.times {
		times[k] = slices.Clone(v)
	}
	return seqs, times, slices.Clone(r.errors)
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// within returns the seqs of xs inside [lo, hi].
func within(xs []uint64, lo, hi uint64) []uint64 {
	var out []uint64
	for _, x := range xs {
		if x >= lo && x <= hi {
			out = append(out, x)
		}
	}
	return out
}

// TestCluster runs three real quotehub processes on one real Redis: every
// node's clients see the same updates, the upstream is asked once per
// symbol per interval however many nodes run, a kill -9 of a refreshing
// node is taken over within two lease periods without any seq going back,
// and a symbol nobody uses any more stops being fetched.
func TestCluster(t *testing.T) {
	url, prefix, rdb := sharedRedis(t)
	const interval, ttl = 200 * time.Millisecond, time.Second
	env := map[string]string{
		"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix, "QUOTEHUB_REFRESH_INTERVAL": interval.String(),
		"QUOTEHUB_LEASE_TTL": ttl.String(), "QUOTEHUB_ACTIVE_WINDOW": "2s", "QUOTEHUB_HEARTBEAT": "500ms",
		"QUOTEHUB_SIM_EVERY_TICK": "true", "QUOTEHUB_SIM_SYMBOLS": "20", "QUOTEHUB_REFRESH_SLOTS": "16",
	}
	syms := []string{"SYN-000001", "SYN-000002", "SYN-000003", "SYN-000004", "SYN-000005", "SYN-000006"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodes []*proc
	fetched := func() float64 {
		var sum float64
		for _, p := range nodes {
			sum += p.scrape("quotehub_upstream_symbols_fetched_total")
		}
		return sum
	}
	perInterval := func(d time.Duration) float64 {
		f0, t0 := fetched(), time.Now()
		time.Sleep(d)
		f1, t1 := fetched(), time.Now()
		return (f1 - f0) / float64(len(syms)) / (t1.Sub(t0).Seconds() / interval.Seconds())
	}

	// Phase 0: one node alone, for comparison.
	nodes = append(nodes, startProc(t, "a", env))
	recA := record(ctx, t, nodes[0], syms)
	time.Sleep(time.Second)
	one := perInterval(2 * time.Second)
	t.Logf("upstream fetches per symbol per interval with 1 node: %.3f", one)

	// Phase 1: three nodes: every update everywhere, and the same upstream cost.
	nodes = append(nodes, startProc(t, "b", env), startProc(t, "c", env))
	poll.Until(t, 10*time.Second, "every node to hold refresh slots", func() bool {
		for _, p := range nodes {
			if p.scrape("quotehub_lease_slots_held") < 4 {
				return false
			}
		}
		return true
	})
	recs := []*recording{recA, record(ctx, t, nodes[1], syms), record(ctx, t, nodes[2], syms)}
	time.Sleep(time.Second) // let subscriptions settle
	three := perInterval(3 * time.Second)
	t.Logf("upstream fetches per symbol per interval with 3 nodes: %.3f", three)
	for n, got := range map[int]float64{1: one, 3: three} {
		if got < 0.75 || got > 1.1 {
			t.Errorf("upstream fetches per symbol per interval with %d node(s) = %.3f, want about 1", n, got)
		}
	}
	seqsA, _, _ := recs[0].snapshot()
	seqsB, _, _ := recs[1].snapshot()
	seqsC, _, _ := recs[2].snapshot()
	for _, s := range syms {
		a, b, c := seqsA[s], seqsB[s], seqsC[s]
		if len(a) < 5 || len(b) < 5 || len(c) < 5 {
			t.Fatalf("%s: too few updates: a=%d b=%d c=%d", s, len(a), len(b), len(c))
		}
		lo := max(a[0], b[0], c[0])
		hi := min(a[len(a)-1], b[len(b)-1], c[len(c)-1])
		wa, wb, wc := within(a, lo, hi), within(b, lo, hi), within(c, lo, hi)
		if !slices.Equal(wa, wc) || !slices.Equal(wb, wc) {
			t.Errorf("%s: nodes saw different updates in [%d, %d]:\na=%v\nb=%v\nc=%v", s, lo, hi, wa, wb, wc)
		}
	}
	var lat []float64
	for i, r := range recs {
		r.mu.Lock()
		if i > 0 { // a's clients may sit on the refreshing node; b and c are across Redis for most symbols
			lat = append(lat, r.lat...)
		}
		r.mu.Unlock()
	}
	t.Logf("publish→client latency on b and c (ms, ±1 ms: fetched_at is in ms): p50 %.2f p99 %.2f over %d quotes",
		percentile(lat, 0.5), percentile(lat, 0.99), len(lat))

	// Phase 2: kill -9 a node that refreshes some of the symbols.
	victim := -1
	for i, p := range nodes {
		if p.scrape("quotehub_refresh_owned_symbols") > 0 {
			victim = i
			break
		}
	}
	if victim < 0 {
		t.Fatal("no node owns any of the watched symbols")
	}
	nodes[victim].kill9()
	killed := time.Now()
	var survivors []*recording
	for i, r := range recs {
		if i != victim {
			survivors = append(survivors, r)
		}
	}
	time.Sleep(2*ttl + 2*interval + 500*time.Millisecond)
	worst := time.Duration(0)
	for _, r := range survivors {
		seqs, times, errs := r.snapshot()
		for _, e := range errs {
			t.Error(e)
		}
		for _, s := range syms {
			ts := times[s]
			var before, after time.Time
			for _, tm := range ts {
				if tm.Before(killed) {
					before = tm
				} else if after.IsZero() {
					after = tm
				}
			}
			if after.IsZero() {
				t.Fatalf("%s: no update on a survivor after the kill (%d before)", s, len(seqs[s]))
			}
			worst = max(worst, after.Sub(before))
		}
	}
	t.Logf("longest gap in a symbol's updates across kill -9 of %s: %s (lease %s, interval %s)", nodes[victim].name, worst, ttl, interval)
	if worst > 2*ttl+interval {
		t.Errorf("updates resumed after %s, want within two lease periods (%s)", worst, 2*ttl)
	}

	// Phase 3: a symbol read once and then left alone stops being fetched
	// after the active window.
	alive := nodes[(victim+1)%3]
	resp, err := http.Get("http://" + alive.addr + "/v1/quotes/SYN-000015")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("read: %v %v", err, resp)
	}
	resp.Body.Close()
	key := prefix + "quote:{SYN-000015}"
	f := func() string { return rdb.HGet(context.Background(), key, "f").Val() }
	first := f()
	poll.Until(t, 5*time.Second, "SYN-000015 to be refreshed while active", func() bool { return f() != first })
	time.Sleep(2*time.Second + 500*time.Millisecond + 2*time.Second) // window + heartbeat + slack
	settled := f()
	time.Sleep(time.Second)
	if got := f(); got != settled {
		t.Errorf("SYN-000015 still fetched after the active window: fetched_at %s → %s", settled, got)
	}
	cancel()
}

// TestClusterRedisOutage: with Redis gone, nodes stay up, report not ready,
// keep their clients' prices moving from their own fetches and answer reads
// from their local copy; when Redis comes back empty, they re-register
// their symbols and clients converge without reconnecting.
func TestClusterRedisOutage(t *testing.T) {
	r := startRedis(t, 0)
	env := map[string]string{
		"QUOTEHUB_REDIS_URL": "redis://" + r.addr() + "/0", "QUOTEHUB_REDIS_PREFIX": "qh:", "QUOTEHUB_REFRESH_INTERVAL": "100ms",
		"QUOTEHUB_LEASE_TTL": "600ms", "QUOTEHUB_HEARTBEAT": "500ms", "QUOTEHUB_SIM_EVERY_TICK": "true", "QUOTEHUB_SIM_SYMBOLS": "10",
	}
	a := startProc(t, "a", env)
	b := startProc(t, "b", env)
	syms := []string{"SYN-000001", "SYN-000002", "SYN-000003"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := record(ctx, t, b, syms)
	_ = a
	count := func() int {
		seqs, _, _ := rec.snapshot()
		n := 0
		for _, s := range syms {
			n += len(seqs[s])
		}
		return n
	}
	poll.Until(t, 10*time.Second, "live updates", func() bool { return count() > 15 })

	r.kill()
	poll.Until(t, 10*time.Second, "b to report Redis down", func() bool {
		resp, err := http.Get("http://" + b.addr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = decodeBody(resp, &body)
		return resp.StatusCode == 503 && strings.Contains(fmt.Sprint(body["reasons"]), "redis")
	})
	n := count()
	poll.Until(t, 10*time.Second, "prices to keep moving without Redis", func() bool { return count() > n+15 })
	var q map[string]any
	if resp := getJSON(t, "http://"+b.addr+"/v1/quotes/SYN-000001", &q); resp.StatusCode != 200 {
		t.Fatalf("read without Redis: %d %v", resp.StatusCode, q)
	}

	r2 := startRedis(t, r.port) // back, and empty
	_ = r2
	poll.Until(t, 15*time.Second, "b to be ready again", func() bool {
		resp, err := http.Get("http://" + b.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	n = count()
	poll.Until(t, 10*time.Second, "updates through Redis again", func() bool { return count() > n+15 })
	_, _, errs := rec.snapshot()
	for _, e := range errs {
		t.Error(e)
	}
	if got := b.scrape("quotehub_connections", "transport", "ws"); got != 1 {
		t.Errorf("the client reconnected or was dropped: %v ws connections", got)
	}
	cancel()
}

// TestClusterSingleFlight: cold reads of one symbol on every node at once
// cost the upstream one fetch in the whole cluster.
func TestClusterSingleFlight(t *testing.T) {
	url, prefix, _ := sharedRedis(t)
	env := map[string]string{
		"QUOTEHUB_REDIS_URL": url, "QUOTEHUB_REDIS_PREFIX": prefix, "QUOTEHUB_REFRESH_INTERVAL": "10s",
		"QUOTEHUB_SIM_LATENCY": "300ms", "QUOTEHUB_SIM_SYMBOLS": "5", "QUOTEHUB_LEASE_TTL": "1s",
	}
	nodes := []*proc{startProc(t, "a", env), startProc(t, "b", env), startProc(t, "c", env)}
	fetched := func() float64 {
		var sum float64
		for _, p := range nodes {
			sum += p.scrape("quotehub_upstream_symbols_fetched_total")
		}
		return sum
	}
	before := fetched()
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var q map[string]any
			resp := getJSON(t, "http://"+nodes[i%3].addr+"/v1/quotes/SYN-000003", &q)
			if resp.StatusCode != 200 || q["symbol"] != "SYN-000003" {
				t.Errorf("cold read on %s: %d %v", nodes[i%3].name, resp.StatusCode, q)
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // room for a second fetch to show up, if there were one
	if got := fetched() - before; got != 1 {
		t.Errorf("the upstream was asked %v times for 60 cold reads on 3 nodes, want 1", got)
	}
}
