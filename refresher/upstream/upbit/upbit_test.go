package upbit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"quotehub"
	"quotehub/internal/poll"
	"quotehub/refresher/upstream/upbit"
	"quotehub/refresher/upstream/upbit/upbittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts a fake with fo and a provider pointed at it with po (its
// URLs, a test logger and short reconnect times filled in).
func setup(t *testing.T, fo upbittest.Options, po upbit.Options) (*upbittest.Server, *upbit.Provider) {
	t.Helper()
	s := upbittest.New(fo)
	t.Cleanup(s.Close)
	po.BaseURL, po.WSURL = s.URL(), s.WSURL()
	if po.Logger == nil {
		l := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
		po.Logger = &l
	}
	if po.Timeout == 0 {
		po.Timeout = 2 * time.Second
	}
	if po.ReconnectMin == 0 {
		po.ReconnectMin = 20 * time.Millisecond
	}
	if po.ReconnectMax == 0 {
		po.ReconnectMax = 200 * time.Millisecond
	}
	return s, upbit.New(po)
}

func fetch(t *testing.T, p *upbit.Provider, syms ...string) ([]quotehub.Quote, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Fetch(ctx, syms)
}

func symbols(qs []quotehub.Quote) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Symbol
	}
	return out
}

func checkValid(t *testing.T, qs []quotehub.Quote) {
	t.Helper()
	for _, q := range qs {
		if err := q.Validate(); err != nil {
			t.Errorf("invalid quote: %v", err)
		}
		if q.Seq != 0 || q.FetchedAt != 0 || q.Source != "upbit" || q.Market != quotehub.MarketOpen {
			t.Errorf("quote %s: seq=%d fetched_at=%d source=%q market=%q", q.Symbol, q.Seq, q.FetchedAt, q.Source, q.Market)
		}
	}
}

// fetchErrors asserts err is a FetchErrors and returns symbol → code.
func fetchErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var fe quotehub.FetchErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a FetchErrors", err, err)
	}
	out := make(map[string]string, len(fe))
	for sym, e := range fe {
		out[sym] = quotehub.ErrorCode(e)
	}
	return out
}

func TestFetchFieldMapping(t *testing.T) {
	s, p := setup(t, upbittest.Options{Frozen: true}, upbit.Options{})
	if p.Name() != "upbit" || p.MaxBatch() != 100 {
		t.Fatalf("Name %q MaxBatch %d", p.Name(), p.MaxBatch())
	}
	qs, err := fetch(t, p, "KRW-ETH", "USDT-BTC", "KRW-BTC", "BTC-ETH", "KRW-ETH")
	if err != nil {
		t.Fatal(err)
	}
	if got := symbols(qs); !slices.Equal(got, []string{"KRW-ETH", "USDT-BTC", "KRW-BTC", "BTC-ETH"}) {
		t.Fatalf("symbols %v", got)
	}
	if p.Requests() != 1 || s.TickerRequests() != 1 || s.MarketsRequested() != 4 {
		t.Fatalf("requests: provider %d, fake %d, markets %d", p.Requests(), s.TickerRequests(), s.MarketsRequested())
	}
	checkValid(t, qs)

	raw, err := upbittest.ReadTestdata("ticker_krw_btc.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc []struct {
		Market            string  `json:"market"`
		TradePrice        float64 `json:"trade_price"`
		PrevClosingPrice  float64 `json:"prev_closing_price"`
		SignedChangePrice float64 `json:"signed_change_price"`
		SignedChangeRate  float64 `json:"signed_change_rate"`
		AccTradeVolume24h float64 `json:"acc_trade_volume_24h"`
		TradeTimestamp    int64   `json:"trade_timestamp"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	bySym := map[string]quotehub.Quote{}
	for _, q := range qs {
		bySym[q.Symbol] = q
	}
	all := quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume
	for _, d := range doc {
		want := quotehub.Quote{
			Symbol: d.Market, Price: d.TradePrice, PrevClose: d.PrevClosingPrice,
			Change: d.SignedChangePrice, ChangeRate: d.SignedChangeRate, Volume: d.AccTradeVolume24h,
			Has: all, Currency: "KRW", TradeTime: d.TradeTimestamp, Source: "upbit", Market: "open",
		}
		if got := bySym[d.Market]; got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", d.Market, got, want)
		}
	}
	// The documented example, spelled out once.
	if q := bySym["KRW-BTC"]; q.Price != 148601000 || q.PrevClose != 148737000 || q.Change != -136000 ||
		q.ChangeRate != -0.0009143656 || q.Volume != 1198.26954807 || q.TradeTime != 1751606040365 {
		t.Errorf("KRW-BTC: %+v", q)
	}
	if bySym["USDT-BTC"].Currency != "USDT" || bySym["BTC-ETH"].Currency != "BTC" {
		t.Errorf("currencies: %q %q", bySym["USDT-BTC"].Currency, bySym["BTC-ETH"].Currency)
	}
	for _, q := range qs {
		if q.Has != all {
			t.Errorf("%s: Has = %b", q.Symbol, q.Has)
		}
	}
}

func TestFetchManyMarketsInOneRequest(t *testing.T) {
	s, p := setup(t, upbittest.Options{}, upbit.Options{})
	all := upbittest.MarketCodes("")
	qs, err := fetch(t, p, all...)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != len(all) || s.TickerRequests() != 1 || s.MarketsRequested() != int64(len(all)) {
		t.Fatalf("%d quotes for %d markets in %d requests", len(qs), len(all), s.TickerRequests())
	}
	checkValid(t, qs)

	_, p2 := setup(t, upbittest.Options{}, upbit.Options{MaxBatch: 5})
	if _, err := fetch(t, p2, all[:6]...); quotehub.ErrorCode(err) != quotehub.ETooManySymbols || p2.Requests() != 0 {
		t.Fatalf("6 symbols with MaxBatch 5: %v after %d requests", err, p2.Requests())
	}
}

func TestFetchPacesOnRemainingReq(t *testing.T) {
	// The token bucket is set far above the fake's budget of 10 per
	// second: only the Remaining-Req header keeps the provider under it.
	s, p := setup(t, upbittest.Options{}, upbit.Options{RatePerSecond: 1000})
	start := time.Now()
	for i := range 25 {
		if _, err := fetch(t, p, "KRW-BTC", "KRW-ETH"); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	if n := s.Status(429); n != 0 {
		t.Fatalf("%d answers were 429", n)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("25 requests with a budget of 10/s took only %v", d)
	}
}

func TestFetchRateLimited(t *testing.T) {
	s, p := setup(t, upbittest.Options{RetryAfterHeader: true}, upbit.Options{})
	s.SetBudget(0)
	_, err := fetch(t, p, "KRW-BTC")
	var bo *quotehub.Backoff
	if !errors.As(err, &bo) || quotehub.ErrorCode(err) != quotehub.ERateLimited || bo.After < time.Second {
		t.Fatalf("429: %v", err)
	}
	// Later calls fail fast, without provoking a block.
	sent := s.Requests()
	_, err = fetch(t, p, "KRW-ETH")
	if !errors.As(err, &bo) || quotehub.ErrorCode(err) != quotehub.ERateLimited || bo.After <= 0 || bo.After > time.Second {
		t.Fatalf("during the backoff: %v", err)
	}
	if s.Requests() != sent {
		t.Errorf("a request was sent during the backoff")
	}

	// Without Retry-After the wait is one second.
	s2, p2 := setup(t, upbittest.Options{}, upbit.Options{})
	s2.SetBudget(0)
	if _, err := fetch(t, p2, "KRW-BTC"); !errors.As(err, &bo) || bo.After != time.Second {
		t.Fatalf("429 without Retry-After: %v", err)
	}
}

func TestFetchBlocked418(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts upbittest.Options
		want time.Duration
	}{
		{"no duration given", upbittest.Options{}, 60 * time.Second},
		{"Retry-After", upbittest.Options{RetryAfterHeader: true}, 45 * time.Second},
		{"duration in body", upbittest.Options{BanTimeInBody: true}, 45 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := setup(t, tc.opts, upbit.Options{})
			s.Ban(45 * time.Second)
			_, err := fetch(t, p, "KRW-BTC")
			var bo *quotehub.Backoff
			if !errors.As(err, &bo) || quotehub.ErrorCode(err) != quotehub.ERateLimited || bo.After != tc.want {
				t.Fatalf("418: %v", err)
			}
			if _, err := p.Catalog(context.Background()); !errors.As(err, &bo) || bo.After > tc.want || p.Requests() != 1 {
				t.Fatalf("during the block: %v after %d requests", err, p.Requests())
			}
		})
	}
}

func TestFetchUnknownAlone(t *testing.T) {
	for _, mode := range []upbittest.UnknownMode{upbittest.Unknown404, upbittest.UnknownEmpty} {
		_, p := setup(t, upbittest.Options{Unknown: mode}, upbit.Options{})
		qs, err := fetch(t, p, "KRW-NOPE")
		if codes := fetchErrors(t, err); len(qs) != 0 || len(codes) != 1 || codes["KRW-NOPE"] != quotehub.EUnknownSymbol {
			t.Fatalf("mode %d: %v %v", mode, qs, codes)
		}
		// Not a market code at all: refused without a request.
		qs, err = fetch(t, p, "krw-btc", "AAPL", "KRW-BTC,KRW-ETH")
		if codes := fetchErrors(t, err); len(qs) != 0 || len(codes) != 3 || p.Requests() != 1 {
			t.Fatalf("non-codes: %v %v after %d requests", qs, codes, p.Requests())
		}
	}
}

func TestFetchUnknownAmongKnown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unknown  upbittest.UnknownMode
		mixed    upbittest.MixedMode
		requests int64 // for the first fetch
		markets  int64 // asked for by the second fetch
	}{
		// The batch is refused: each market is asked alone, which
		// confirms the unknown one, and it is not asked for again.
		{"404 for the whole request", upbittest.Unknown404, upbittest.MixedWhole, 4, 2},
		{"200 [] for the whole request", upbittest.UnknownEmpty, upbittest.MixedWhole, 4, 2},
		// Only missing from the answer: reported, but asked again.
		{"known markets only", upbittest.Unknown404, upbittest.MixedKnownOnly, 1, 3},
		{"known markets only, 200 [] alone", upbittest.UnknownEmpty, upbittest.MixedKnownOnly, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := setup(t, upbittest.Options{Unknown: tc.unknown, Mixed: tc.mixed}, upbit.Options{})
			qs, err := fetch(t, p, "KRW-BTC", "KRW-NOPE", "KRW-ETH")
			codes := fetchErrors(t, err)
			if !slices.Equal(symbols(qs), []string{"KRW-BTC", "KRW-ETH"}) || len(codes) != 1 ||
				codes["KRW-NOPE"] != quotehub.EUnknownSymbol {
				t.Fatalf("quotes %v, errors %v", symbols(qs), codes)
			}
			checkValid(t, qs)
			if s.TickerRequests() != tc.requests {
				t.Errorf("%d requests, want %d", s.TickerRequests(), tc.requests)
			}
			before, markets := s.TickerRequests(), s.MarketsRequested()
			qs, err = fetch(t, p, "KRW-BTC", "KRW-NOPE", "KRW-ETH")
			if codes := fetchErrors(t, err); len(qs) != 2 || codes["KRW-NOPE"] != quotehub.EUnknownSymbol {
				t.Fatalf("second fetch: %v %v", symbols(qs), codes)
			}
			if s.TickerRequests()-before != 1 || s.MarketsRequested()-markets != tc.markets {
				t.Errorf("second fetch: %d requests for %d markets", s.TickerRequests()-before, s.MarketsRequested()-markets)
			}
		})
	}
}

func TestFetchMarketDelistedMidRun(t *testing.T) {
	s, p := setup(t, upbittest.Options{}, upbit.Options{})
	syms := upbittest.MarketCodes("KRW")[:10]
	if qs, err := fetch(t, p, syms...); err != nil || len(qs) != 10 {
		t.Fatalf("%d quotes, %v", len(qs), err)
	}
	s.Delist(syms[3], true)
	qs, err := fetch(t, p, syms...)
	codes := fetchErrors(t, err)
	if len(qs) != 9 || len(codes) != 1 || codes[syms[3]] != quotehub.EUnknownSymbol {
		t.Fatalf("%d quotes, errors %v", len(qs), codes)
	}
}

func TestFetchUpstreamFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*upbittest.Server)
	}{
		{"503", func(s *upbittest.Server) { s.SetDown(true) }},
		{"truncated body", func(s *upbittest.Server) { s.SetTruncate(true) }},
		{"connection reset", func(s *upbittest.Server) { s.SetReset(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := setup(t, upbittest.Options{}, upbit.Options{})
			tc.fault(s)
			qs, err := fetch(t, p, "KRW-BTC", "KRW-ETH")
			var fe quotehub.FetchErrors
			if len(qs) != 0 || errors.As(err, &fe) || quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable {
				t.Fatalf("%d quotes, error %v", len(qs), err)
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	s, p := setup(t, upbittest.Options{}, upbit.Options{Timeout: 200 * time.Millisecond})
	s.SetLatency(3 * time.Second)
	start := time.Now()
	_, err := fetch(t, p, "KRW-BTC")
	d := time.Since(start)
	if quotehub.ErrorCode(err) != quotehub.EUpstreamUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	if d < 150*time.Millisecond || d > time.Second {
		t.Errorf("gave up after %v, Timeout is 200ms", d)
	}
}

func TestFetchMalformedObjects(t *testing.T) {
	s, p := setup(t, upbittest.Options{}, upbit.Options{})
	s.SetMalformed("KRW-ETH", upbittest.MissingPrice)
	s.SetMalformed("KRW-XRP", upbittest.SecondsTimestamp)
	s.SetMalformed("KRW-SOL", upbittest.ZeroPrice)
	qs, err := fetch(t, p, "KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE")
	codes := fetchErrors(t, err)
	if !slices.Equal(symbols(qs), []string{"KRW-BTC", "KRW-DOGE"}) {
		t.Fatalf("quotes %v", symbols(qs))
	}
	checkValid(t, qs)
	for _, sym := range []string{"KRW-ETH", "KRW-XRP", "KRW-SOL"} {
		if codes[sym] != quotehub.EUpstreamUnavailable {
			t.Errorf("%s: %q", sym, codes[sym])
		}
	}
	// An object without "market" cannot be attributed: the market it
	// should have been is unavailable, not unknown (and not remembered).
	s.SetMalformed("KRW-ADA", upbittest.MissingMarket)
	qs, err = fetch(t, p, "KRW-ADA", "KRW-BTC")
	if codes := fetchErrors(t, err); len(qs) != 1 || codes["KRW-ADA"] != quotehub.EUpstreamUnavailable {
		t.Fatalf("missing market: %v %v", symbols(qs), codes)
	}
	s.SetMalformed("KRW-ADA", upbittest.WellFormed)
	if qs, err := fetch(t, p, "KRW-ADA"); err != nil || len(qs) != 1 {
		t.Fatalf("repaired: %v %v", qs, err)
	}
}

func TestCatalog(t *testing.T) {
	_, p := setup(t, upbittest.Options{}, upbit.Options{})
	cat, err := p.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	krw := upbittest.MarketCodes("KRW")
	slices.Sort(krw)
	got := make([]string, len(cat))
	for i, c := range cat {
		got[i] = c.Symbol
		if c.Exchange != quotehub.ExchangeUpbit || c.Currency != "KRW" {
			t.Errorf("%+v", c)
		}
	}
	if !slices.Equal(got, krw) {
		t.Fatalf("catalog %v\nwant %v", got, krw)
	}
	if i := slices.IndexFunc(cat, func(c quotehub.SymbolInfo) bool { return c.Symbol == "KRW-BTC" }); cat[i].Name != "비트코인 Bitcoin" {
		t.Errorf("KRW-BTC name %q", cat[i].Name)
	}

	_, p2 := setup(t, upbittest.Options{}, upbit.Options{Quotes: []string{"BTC", "USDT"}})
	cat, err = p2.Catalog(context.Background())
	if err != nil || len(cat) == 0 {
		t.Fatal(err)
	}
	for _, c := range cat {
		if !strings.HasPrefix(c.Symbol, c.Currency+"-") || c.Currency == "KRW" {
			t.Errorf("%+v", c)
		}
	}
}

// collector records what Stream emits and checks emit is never called
// after Stream returned.
type collector struct {
	t        *testing.T
	mu       sync.Mutex
	quotes   []quotehub.Quote
	returned atomic.Bool
}

func (c *collector) emit(qs []quotehub.Quote) {
	if c.returned.Load() {
		c.t.Error("emit called after Stream returned")
	}
	if len(qs) == 0 {
		c.t.Error("emit called with no quotes")
	}
	seen := map[string]bool{}
	for _, q := range qs {
		if seen[q.Symbol] {
			c.t.Errorf("two quotes of %s in one emit", q.Symbol)
		}
		seen[q.Symbol] = true
	}
	checkValid(c.t, qs)
	c.mu.Lock()
	c.quotes = append(c.quotes, qs...)
	c.mu.Unlock()
}

// take returns the quotes so far and forgets them.
func (c *collector) take() []quotehub.Quote {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.quotes
	c.quotes = nil
	return out
}

// bySymbol waits until quotes of every symbol in want have arrived (since
// the last take) and returns them per symbol.
func (c *collector) waitFor(want ...string) map[string][]quotehub.Quote {
	c.t.Helper()
	got := map[string][]quotehub.Quote{}
	poll.Until(c.t, 3*time.Second, "quotes of "+strings.Join(want, ","), func() bool {
		for _, q := range c.take() {
			got[q.Symbol] = append(got[q.Symbol], q)
		}
		for _, w := range want {
			if len(got[w]) == 0 {
				return false
			}
		}
		return true
	})
	return got
}

// stream runs p.Stream until the test ends, then checks it returns
// promptly.
func stream(t *testing.T, p *upbit.Provider) *collector {
	c := &collector{t: t}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := p.Stream(ctx, c.emit)
		c.returned.Store(true)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Stream returned %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Stream did not return after cancel")
		}
		if p.Connected() {
			t.Error("Connected after Stream returned")
		}
	})
	return c
}

func TestStreamSnapshots(t *testing.T) {
	// No REALTIME ticks: whatever arrives is the SNAPSHOT.
	s, p := setup(t, upbittest.Options{TickEvery: time.Hour, Frozen: true}, upbit.Options{})
	c := stream(t, p)
	p.Follow([]string{"KRW-SOL", "KRW-BTC", "KRW-ETH", "KRW-BTC", "not a code"})
	got := c.waitFor("KRW-BTC", "KRW-ETH", "KRW-SOL")
	poll.Until(t, time.Second, "Connected", p.Connected)
	if sub := s.LastSubscription(); !slices.Equal(sub, []string{"KRW-BTC", "KRW-ETH", "KRW-SOL"}) {
		t.Errorf("subscription %v", sub)
	}
	// Mapped exactly like REST.
	rest, err := fetch(t, p, "KRW-BTC")
	if err != nil {
		t.Fatal(err)
	}
	if q := got["KRW-BTC"][0]; q != rest[0] {
		t.Errorf("stream quote %+v\n  REST quote %+v", q, rest[0])
	}
	if p.Requests() != 1 {
		t.Errorf("Requests() = %d: the stream is not an HTTP request", p.Requests())
	}
}

func TestStreamFollowChanges(t *testing.T) {
	s, p := setup(t, upbittest.Options{TickEvery: 20 * time.Millisecond}, upbit.Options{})
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC", "KRW-ETH", "KRW-XRP"})
	got := c.waitFor("KRW-BTC", "KRW-ETH", "KRW-XRP")
	poll.Until(t, time.Second, "Connected", p.Connected)
	if len(got["KRW-BTC"]) < 1 {
		t.Fatal("no KRW-BTC")
	}

	p.Follow([]string{"KRW-SOL", "KRW-DOGE"})
	// Connected must turn false at once and stay so until the new set is
	// subscribed and delivers; on a busy machine that can all happen
	// before the next line runs, so true is only wrong while the server
	// has not seen the new subscription.
	if connected, sub := p.Connected(), s.LastSubscription(); connected && !slices.Equal(sub, []string{"KRW-DOGE", "KRW-SOL"}) {
		t.Errorf("Connected right after the set changed, with the subscription still %v", sub)
	}
	poll.Until(t, 2*time.Second, "Connected to the new set", p.Connected)
	if sub := s.LastSubscription(); !slices.Equal(sub, []string{"KRW-DOGE", "KRW-SOL"}) {
		t.Fatalf("subscription %v", sub)
	}
	c.take()
	// The fake's ticks send the codes of the subscription they started
	// with, so a tick under way when the subscription changed may still
	// send old codes, after the new snapshot. The second quote of a new
	// code comes from a later tick (or is conflated with one), and the
	// stream keeps order: once it is here, every old message has been read.
	got = map[string][]quotehub.Quote{}
	poll.Until(t, 3*time.Second, "two quotes each of KRW-SOL and KRW-DOGE", func() bool {
		for _, q := range c.take() {
			got[q.Symbol] = append(got[q.Symbol], q)
		}
		return len(got["KRW-SOL"]) >= 2 && len(got["KRW-DOGE"]) >= 2
	})
	for sym := range got {
		if sym != "KRW-SOL" && sym != "KRW-DOGE" {
			t.Errorf("quote of %s after it was unfollowed", sym)
		}
	}
	if s.WSConnections() != 1 || s.Subscriptions() != 2 {
		t.Errorf("%d connections, %d subscriptions", s.WSConnections(), s.Subscriptions())
	}
}

func TestStreamReconnectsAfterDrop(t *testing.T) {
	s, p := setup(t, upbittest.Options{TickEvery: 20 * time.Millisecond}, upbit.Options{})
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC", "KRW-ETH"})
	c.waitFor("KRW-BTC", "KRW-ETH")
	poll.Until(t, time.Second, "Connected", p.Connected)

	// Held down, so that the gap is observable.
	s.SetDown(true)
	s.DropStream()
	poll.Until(t, time.Second, "Connected to go false", func() bool { return !p.Connected() })
	c.take()
	s.SetDown(false)
	poll.Until(t, 3*time.Second, "Connected again", p.Connected)
	c.waitFor("KRW-BTC", "KRW-ETH")
	if s.WSConnections() != 2 || s.Subscriptions() != 2 {
		t.Errorf("%d connections, %d subscriptions", s.WSConnections(), s.Subscriptions())
	}

	// And without help.
	s.DropStream()
	poll.Until(t, 3*time.Second, "a third connection", func() bool { return s.WSConnections() == 3 })
	c.take()
	c.waitFor("KRW-BTC", "KRW-ETH")
	poll.Until(t, time.Second, "Connected", p.Connected)
}

func TestStreamSubscriptionErrorReconnects(t *testing.T) {
	s, p := setup(t, upbittest.Options{TickEvery: 20 * time.Millisecond}, upbit.Options{})
	s.FailSubscriptions(1)
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC"})
	c.waitFor("KRW-BTC")
	poll.Until(t, time.Second, "Connected", p.Connected)
	if s.WSConnections() != 2 || s.Subscriptions() != 1 {
		t.Errorf("%d connections, %d subscriptions", s.WSConnections(), s.Subscriptions())
	}
}

func TestStreamTextFrames(t *testing.T) {
	_, p := setup(t, upbittest.Options{TextFrames: true, TickEvery: 20 * time.Millisecond}, upbit.Options{})
	c := stream(t, p)
	p.Follow([]string{"USDT-BTC"})
	if q := c.waitFor("USDT-BTC")["USDT-BTC"][0]; q.Currency != "USDT" {
		t.Errorf("%+v", q)
	}
}

func TestStreamPingKeepsConnectionAlive(t *testing.T) {
	// The fake closes connections idle for 200 ms and sends nothing after
	// the snapshot: only the provider's PINGs (and the answers) keep the
	// connection busy.
	s, p := setup(t, upbittest.Options{TickEvery: time.Hour, IdleTimeout: 200 * time.Millisecond},
		upbit.Options{PingEvery: 40 * time.Millisecond})
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC"})
	c.waitFor("KRW-BTC")
	// A ticker fires no sooner than its period: 15 PINGs take at least
	// 14 × 40 ms = 560 ms, well past the idle timeout, so the connection
	// has had every chance to be closed.
	start := time.Now()
	poll.Until(t, 5*time.Second, "15 PINGs", func() bool { return s.Pings() >= 15 })
	t.Logf("15 PINGs in %v", time.Since(start))
	if s.WSConnections() != 1 || !p.Connected() {
		t.Errorf("%d connections, connected %v", s.WSConnections(), p.Connected())
	}
}

func TestStreamReconnectsAfterIdleClose(t *testing.T) {
	// PingEvery longer than the fake's idle timeout: the fake closes the
	// quiet connection, and the provider must come back on its own.
	s, p := setup(t, upbittest.Options{TickEvery: time.Hour, IdleTimeout: 100 * time.Millisecond},
		upbit.Options{PingEvery: 300 * time.Millisecond})
	c := stream(t, p)
	p.Follow([]string{"KRW-ETH"})
	c.waitFor("KRW-ETH")
	poll.Until(t, 3*time.Second, "a reconnection after the idle close", func() bool { return s.WSConnections() >= 2 })
	c.take()
	c.waitFor("KRW-ETH") // the snapshot of the new connection
}

func TestStreamSilentConnectionIsReplaced(t *testing.T) {
	// Nothing arrives for 2×PingEvery + Timeout: the provider gives up on
	// the connection and opens another.
	s, p := setup(t, upbittest.Options{TickEvery: 20 * time.Millisecond},
		upbit.Options{PingEvery: 30 * time.Millisecond, Timeout: 100 * time.Millisecond})
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC"})
	c.waitFor("KRW-BTC")
	s.SetSilent(true)
	poll.Until(t, 3*time.Second, "a new connection", func() bool { return s.WSConnections() >= 2 })
	s.SetSilent(false)
	c.take()
	c.waitFor("KRW-BTC")
	poll.Until(t, 3*time.Second, "Connected", p.Connected)
}

func TestStreamIdleWithoutSymbols(t *testing.T) {
	s, p := setup(t, upbittest.Options{TickEvery: 20 * time.Millisecond}, upbit.Options{})
	// Stream parked in its wait for something to follow: it holds no
	// connection and dialled none on the way.
	parked := func() bool {
		return slices.ContainsFunc(poll.Goroutines("select"), func(g string) bool {
			return strings.HasPrefix(g, "quotehub/refresher/upstream/upbit.(*Provider).Stream(")
		})
	}
	c := stream(t, p)
	poll.Until(t, 5*time.Second, "Stream to wait for something to follow", parked)
	if s.WSConnections() != 0 || p.Connected() {
		t.Fatalf("connected with nothing to follow")
	}
	p.Follow([]string{"KRW-BTC"})
	c.waitFor("KRW-BTC")
	p.Follow(nil)
	if p.Connected() {
		t.Error("Connected with nothing followed")
	}
	poll.Until(t, time.Second, "the connection to close", func() bool { return s.OpenStreams() == 0 })
	poll.Until(t, 5*time.Second, "Stream to wait again for something to follow", parked)
	if s.WSConnections() != 1 || p.Connected() {
		t.Errorf("%d connections, connected %v", s.WSConnections(), p.Connected())
	}
	c.take()
	p.Follow([]string{"KRW-ETH"})
	c.waitFor("KRW-ETH")
	if s.WSConnections() != 2 {
		t.Errorf("%d connections", s.WSConnections())
	}
}

func TestStreamCancelAndSingleRun(t *testing.T) {
	s, p := setup(t, upbittest.Options{TickEvery: 5 * time.Millisecond}, upbit.Options{})
	fake := goleak.IgnoreCurrent() // the fake's server
	c := &collector{t: t}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Stream(ctx, c.emit)
		c.returned.Store(true)
		close(done)
	}()
	p.Follow(upbittest.MarketCodes("KRW")[:20])
	c.waitFor("KRW-BTC")
	poll.Until(t, time.Second, "Connected", p.Connected)
	if err := p.Stream(context.Background(), c.emit); err == nil {
		t.Error("a second concurrent Stream did not fail")
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Stream did not return within 1 s of cancel")
	}
	t.Logf("Stream returned %v after cancel", time.Since(start))
	if p.Connected() {
		t.Error("Connected after Stream returned")
	}
	// emit is called from Stream's goroutine only, so a late emit needs a
	// goroutine that outlived Stream: with the fake closed, none may be
	// left.
	s.Close()
	goleak.VerifyNone(t, fake)
}

func TestStreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()             // nothing listens there now
	var downs atomic.Int32 // failed connections, as logged
	l := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).Hook(zerolog.HookFunc(
		func(_ *zerolog.Event, _ zerolog.Level, msg string) {
			if msg == "upbit: stream down" {
				downs.Add(1)
			}
		}))
	p := upbit.New(upbit.Options{WSURL: "ws://" + addr + "/websocket/v1", ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, Logger: &l})
	c := stream(t, p)
	p.Follow([]string{"KRW-BTC"})
	poll.Until(t, 5*time.Second, "three failed connections", func() bool { return downs.Load() >= 3 })
	if p.Connected() || len(c.take()) != 0 {
		t.Fatal("connected to nothing")
	}
}
