package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"quotehub"
	"quotehub/auth"
	"quotehub/store/usercache"
)

func benchToken(b *testing.B, user string) string {
	b.Helper()
	tok, err := auth.Sign(secret, auth.Claims{Subject: user, TTL: time.Hour}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// synQuotes are fresh quotes of SYN-000 to SYN-(n-1), fetched at fetched
// (Unix ms), with seq seq.
func synQuotes(n int, seq uint64, fetched int64) []quotehub.Quote {
	qs := make([]quotehub.Quote, n)
	for i := range qs {
		qs[i] = quote(fmt.Sprintf("SYN-%03d", i), 100+float64(i)+float64(seq%7), seq, 0)
		qs[i].FetchedAt = fetched
	}
	return qs
}

func portfolioOf(syms []string) quotehub.Portfolio {
	p := quotehub.Portfolio{BaseCurrency: "KRW"}
	for i, s := range syms {
		p.Holdings = append(p.Holdings, quotehub.Holding{Symbol: s, Quantity: float64(i + 1), AvgCost: 90, Currency: "KRW"})
	}
	return p
}

func percentileMs(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkValuedPortfolioRead: GET /v1/me/portfolio of 50 holdings whose
// prices are fresh in the cache, from 8 keep-alive clients over loopback:
// requests per second and latency percentiles as the client sees them.
// "store" reads the holdings from the embedded store on every request,
// "cached" through the node's portfolio cache, as quotehub is wired.
func BenchmarkValuedPortfolioRead(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchValuedRead(b, nil) })
	b.Run("cached", func(b *testing.B) {
		benchValuedRead(b, func(st quotehub.UserStore) quotehub.UserStore { return usercache.New(st, 0, true) })
	})
}

// startValuedNode starts a follow node (its user store wrapped by wrap,
// if set) where alice holds 50 symbols whose prices are fresh in the cache.
func startValuedNode(b *testing.B, wrap func(quotehub.UserStore) quotehub.UserStore) *followNode {
	n := startFollowNodeOn(b, 200, wrap)
	var syms []string
	for i := range 50 {
		syms = append(syms, fmt.Sprintf("SYN-%03d", i))
	}
	if _, err := n.cache.PutMany(context.Background(), synQuotes(50, 1, time.Now().UnixMilli())); err != nil {
		b.Fatal(err)
	}
	if _, err := n.users.PutPortfolio(context.Background(), "alice", portfolioOf(syms), quotehub.AnyVersion); err != nil {
		b.Fatal(err)
	}
	return n
}

func benchValuedRead(b *testing.B, wrap func(quotehub.UserStore) quotehub.UserStore) {
	n := startValuedNode(b, wrap)
	tok := benchToken(b, "alice")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	var lat []float64
	calls := n.prov.calls.Load()
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []float64
		req, _ := http.NewRequest("GET", n.url("/v1/me/portfolio"), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		var buf bytes.Buffer
		for pb.Next() {
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			buf.Reset()
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(`"valuation"`)) {
				b.Errorf("%d %.200s", resp.StatusCode, buf.Bytes())
				return
			}
			mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(percentileMs(lat, 0.5), "p50-ms")
	b.ReportMetric(percentileMs(lat, 0.99), "p99-ms")
	if got := n.prov.calls.Load(); got != calls {
		b.Errorf("valued reads called the upstream %d times", got-calls)
	}
}

// BenchmarkFollowedPortfolios: users (QUOTEHUB_BENCH_FOLLOWERS, default
// 9,500: client and server sockets share this process's 20,000 file
// descriptors) each follow a 20-symbol portfolio of 120 symbols over a
// real WebSocket; QUOTEHUB_BENCH_REFRESHES refreshes (default 10), all 120
// symbols changing, 1 s apart (run it with -benchtime 1x: b.N is not used). Reported: the age of each valuation frame when its
// client reads it (receive time − as_of, the newest fetched_at valued),
// p50/p99/max, and frames per refresh.
func BenchmarkFollowedPortfolios(b *testing.B) {
	users := 9500
	if v, err := strconv.Atoi(os.Getenv("QUOTEHUB_BENCH_FOLLOWERS")); err == nil && v > 0 {
		users = v
	}
	refreshes := 10
	if v, err := strconv.Atoi(os.Getenv("QUOTEHUB_BENCH_REFRESHES")); err == nil && v > 0 {
		refreshes = v
	}
	// The portfolios are kept in memory: writing thousands of them to
	// the embedded store would take most of the run, and the store is
	// not on the path measured (a session reads its portfolio once).
	mem := &memPortfolios{m: map[string]quotehub.Portfolio{}}
	n := startFollowNodeOn(b, 200, func(st quotehub.UserStore) quotehub.UserStore { mem.UserStore = st; return mem })
	ctx := context.Background()
	if _, err := n.cache.PutMany(ctx, synQuotes(120, 1, time.Now().UnixMilli())); err != nil {
		b.Fatal(err)
	}
	conns := make([]*websocket.Conn, users)
	for i := range users {
		syms := make([]string, 20)
		for j := range syms {
			syms[j] = fmt.Sprintf("SYN-%03d", (i*7+j*5)%120)
		}
		user := fmt.Sprintf("u%05d", i)
		mem.put(user, portfolioOf(syms))
		c, _, err := websocket.Dial(ctx, "ws://"+n.addr+"/v1/ws?token="+benchToken(b, user), nil)
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		c.SetReadLimit(1 << 20)
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	var mu sync.Mutex
	var ages []float64
	frames := 0
	measuring := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"follow","lists":["portfolio"]}`)); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			asOf := []byte(`"as_of":`)
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				at := time.Now().UnixMilli()
				i := bytes.LastIndex(data, asOf)
				if i < 0 || !bytes.HasPrefix(data, []byte(`{"type":"portfolio"`)) {
					continue
				}
				j := i + len(asOf)
				k := j
				for k < len(data) && data[k] >= '0' && data[k] <= '9' {
					k++
				}
				v, _ := strconv.ParseInt(string(data[j:k]), 10, 64)
				select {
				case <-measuring:
					mu.Lock()
					ages = append(ages, float64(at-v))
					frames++
					mu.Unlock()
				default:
				}
			}
		}()
	}
	// Let every follow be answered before measuring.
	time.Sleep(2 * time.Second)
	close(measuring)
	b.ResetTimer()
	next := time.Now()
	for i := 0; i < refreshes; i++ {
		next = next.Add(time.Second)
		time.Sleep(time.Until(next))
		qs := synQuotes(120, uint64(i+2), time.Now().UnixMilli())
		_, _ = n.cache.PutMany(ctx, qs)
		n.hub.Publish(qs)
	}
	time.Sleep(time.Second) // the last refresh's frames
	b.StopTimer()
	for _, c := range conns {
		c.CloseNow()
	}
	wg.Wait()
	b.ReportMetric(float64(frames)/float64(refreshes), "frames/refresh")
	b.ReportMetric(percentileMs(ages, 0.5), "age-p50-ms")
	b.ReportMetric(percentileMs(ages, 0.99), "age-p99-ms")
	b.ReportMetric(slices.Max(append(ages, 0)), "age-max-ms")
}

// memPortfolios is a UserStore whose portfolios are kept in a map.
type memPortfolios struct {
	quotehub.UserStore
	mu sync.Mutex
	m  map[string]quotehub.Portfolio
}

func (s *memPortfolios) put(user string, p quotehub.Portfolio) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Version = 1
	s.m[user] = p
}

func (s *memPortfolios) Portfolio(_ context.Context, user string) (quotehub.Portfolio, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[user], nil
}
