package storetest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"quotehub"
)

// NewUserStore returns a fresh UserStore enforcing lim. Stores may share a
// database with other tests: the suite's users are unique to each subtest.
type NewUserStore func(t *testing.T, lim quotehub.UserLimits) quotehub.UserStore

// userLimits are small, so the suite reaches every limit cheaply.
var userLimits = quotehub.UserLimits{MaxWatchlists: 3, MaxSymbols: 5, MaxHoldings: 4, MaxAlertRules: 3, MaxNameLen: 32, FiredWindow: 4}

// user returns a user id no other subtest or run uses, with suffix.
func user(suffix string) string {
	return fmt.Sprintf("u%s-%d%s", runID, counter.Add(1), suffix)
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := quotehub.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ptr[T any](v T) *T { return &v }

// TestUserStore is the conformance suite of quotehub.UserStore.
func TestUserStore(t *testing.T, newStore NewUserStore) {
	t.Run("Empty", func(t *testing.T) { testUserEmpty(t, newStore(t, userLimits)) })
	t.Run("Watchlists", func(t *testing.T) { testWatchlists(t, newStore(t, userLimits)) })
	t.Run("WatchlistVersions", func(t *testing.T) { testWatchlistVersions(t, newStore(t, userLimits)) })
	t.Run("WatchlistLimits", func(t *testing.T) { testWatchlistLimits(t, newStore(t, userLimits)) })
	t.Run("Isolation", func(t *testing.T) { testUserIsolation(t, newStore(t, userLimits)) })
	t.Run("Metacharacters", func(t *testing.T) { testMetacharacters(t, newStore(t, userLimits)) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrentWriters(t, newStore(t, userLimits)) })
	t.Run("Portfolio", func(t *testing.T) { testPortfolio(t, newStore(t, userLimits)) })
	t.Run("Trades", func(t *testing.T) { testTrades(t, newStore(t, userLimits)) })
	t.Run("AlertRules", func(t *testing.T) { testAlertRules(t, newStore(t, userLimits)) })
	t.Run("FiredAlerts", func(t *testing.T) { testFiredAlerts(t, newStore(t, userLimits)) })
	t.Run("Ready", func(t *testing.T) {
		if err := newStore(t, userLimits).Ready(ctx(t)); err != nil {
			t.Fatal(err)
		}
	})
}

func testUserEmpty(t *testing.T, s quotehub.UserStore) {
	u := user("")
	ws := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))
	if ws == nil || len(ws) != 0 {
		t.Errorf("Watchlists of a new user = %#v, want an empty non-nil list", ws)
	}
	p := must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), u))
	if p.Version != 0 || p.BaseCurrency != quotehub.DefaultBaseCurrency || p.Holdings == nil || len(p.Holdings) != 0 {
		t.Errorf("Portfolio of a new user = %#v", p)
	}
	if rs := must[[]quotehub.AlertRule](t)(s.AlertRules(ctx(t), u)); rs == nil || len(rs) != 0 {
		t.Errorf("AlertRules of a new user = %#v", rs)
	}
	if fs := must[[]quotehub.FiredAlert](t)(s.FiredAlerts(ctx(t), u, 0, 10)); len(fs) != 0 {
		t.Errorf("FiredAlerts of a new user = %#v", fs)
	}
	if ts := must[[]quotehub.Trade](t)(s.Trades(ctx(t), u, 10)); len(ts) != 0 {
		t.Errorf("Trades of a new user = %#v", ts)
	}
	_, err := s.Watchlist(ctx(t), u, "nope")
	wantCode(t, err, quotehub.ENotFound)
	_, err = s.AlertRule(ctx(t), u, 12345)
	wantCode(t, err, quotehub.ENotFound)
}

func testWatchlists(t *testing.T, s quotehub.UserStore) {
	u := user("")
	a := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "  Tech  ", Symbols: []string{"aapl", " krw-btc", "AAPL", "005930.ks"}}))
	if a.ID == "" || a.Name != "Tech" || a.Version != 1 || !slices.Equal(a.Symbols, []string{"AAPL", "KRW-BTC", "005930.KS"}) {
		t.Fatalf("created %#v: want id, trimmed name, version 1, symbols normalised without repeats in order", a)
	}
	if a.CreatedAt.IsZero() || !a.UpdatedAt.Equal(a.CreatedAt) {
		t.Errorf("times of a new watchlist: %v %v", a.CreatedAt, a.UpdatedAt)
	}
	b := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Empty"}))
	if b.Symbols == nil || len(b.Symbols) != 0 || b.ID == a.ID {
		t.Fatalf("created %#v", b)
	}
	c := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Coins", Symbols: []string{"KRW-ETH"}}))

	got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, a.ID))
	if got.ID != a.ID || got.Name != a.Name || got.Version != 1 || !slices.Equal(got.Symbols, a.Symbols) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Watchlist = %#v, want %#v", got, a)
	}
	all := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))
	if ids := watchlistIDs(all); !slices.Equal(ids, []string{a.ID, b.ID, c.ID}) {
		t.Fatalf("Watchlists in order %v, want creation order %v", ids, []string{a.ID, b.ID, c.ID})
	}
	if !slices.Equal(all[0].Symbols, a.Symbols) || len(all[1].Symbols) != 0 || !slices.Equal(all[2].Symbols, []string{"KRW-ETH"}) {
		t.Errorf("Watchlists symbols: %v", all)
	}

	// Partial updates: name only, symbols only (order kept), both.
	a2 := must[quotehub.Watchlist](t)(s.UpdateWatchlist(ctx(t), u, a.ID, quotehub.WatchlistUpdate{Name: ptr("Big tech")}, quotehub.AnyVersion))
	if a2.Version != 2 || a2.Name != "Big tech" || !slices.Equal(a2.Symbols, a.Symbols) {
		t.Errorf("after renaming: %#v", a2)
	}
	a3 := must[quotehub.Watchlist](t)(s.UpdateWatchlist(ctx(t), u, a.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"krw-xrp", "AAPL"}}, 2))
	if a3.Version != 3 || a3.Name != "Big tech" || !slices.Equal(a3.Symbols, []string{"KRW-XRP", "AAPL"}) {
		t.Errorf("after replacing symbols: %#v", a3)
	}
	a4 := must[quotehub.Watchlist](t)(s.UpdateWatchlist(ctx(t), u, a.ID, quotehub.WatchlistUpdate{Name: ptr("T"), Symbols: &[]string{}}, 3))
	if a4.Version != 4 || a4.Name != "T" || len(a4.Symbols) != 0 || a4.Symbols == nil {
		t.Errorf("after emptying: %#v", a4)
	}
	if got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, a.ID)); got.Version != 4 || got.Name != "T" || len(got.Symbols) != 0 {
		t.Errorf("stored after updates: %#v", got)
	}

	// Delete; the name is free again; the others stay.
	if err := s.DeleteWatchlist(ctx(t), u, b.ID, 1); err != nil {
		t.Fatal(err)
	}
	_, err := s.Watchlist(ctx(t), u, b.ID)
	wantCode(t, err, quotehub.ENotFound)
	wantCode(t, s.DeleteWatchlist(ctx(t), u, b.ID, quotehub.AnyVersion), quotehub.ENotFound)
	_, err = s.UpdateWatchlist(ctx(t), u, b.ID, quotehub.WatchlistUpdate{Name: ptr("x")}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.ENotFound)
	if ids := watchlistIDs(must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))); !slices.Equal(ids, []string{a.ID, c.ID}) {
		t.Errorf("after delete: %v", ids)
	}
	b2 := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Empty"}))
	if ids := watchlistIDs(must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))); !slices.Equal(ids, []string{a.ID, c.ID, b2.ID}) {
		t.Errorf("a re-created list comes last: %v", ids)
	}

	// Duplicate names, on create and on rename.
	_, err = s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Coins"})
	wantCode(t, err, quotehub.EConflict)
	_, err = s.UpdateWatchlist(ctx(t), u, a.ID, quotehub.WatchlistUpdate{Name: ptr(" Coins ")}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.EConflict)
	if got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, a.ID)); got.Version != 4 || got.Name != "T" {
		t.Errorf("a refused rename changed the list: %#v", got)
	}
	// Renaming a list to its own name is no conflict.
	must[quotehub.Watchlist](t)(s.UpdateWatchlist(ctx(t), u, c.ID, quotehub.WatchlistUpdate{Name: ptr("Coins")}, quotehub.AnyVersion))
}

func watchlistIDs(ws []quotehub.Watchlist) []string {
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.ID
	}
	return ids
}

func testWatchlistVersions(t *testing.T, s quotehub.UserStore) {
	u := user("")
	w := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "L", Symbols: []string{"A1"}}))
	must[quotehub.Watchlist](t)(s.UpdateWatchlist(ctx(t), u, w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"B1"}}, 1))
	for _, v := range []int64{0, 1, 3, 99} {
		_, err := s.UpdateWatchlist(ctx(t), u, w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"C1"}, Name: ptr("M")}, v)
		wantCode(t, err, quotehub.EPreconditionFailed)
		wantCode(t, s.DeleteWatchlist(ctx(t), u, w.ID, v), quotehub.EPreconditionFailed)
	}
	got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, w.ID))
	if got.Version != 2 || got.Name != "L" || !slices.Equal(got.Symbols, []string{"B1"}) {
		t.Fatalf("stale writes changed the list: %#v", got)
	}
	if err := s.DeleteWatchlist(ctx(t), u, w.ID, 2); err != nil {
		t.Fatal(err)
	}
}

func testWatchlistLimits(t *testing.T, s quotehub.UserStore) {
	u := user("")
	six := []string{"A1", "A2", "A3", "A4", "A5", "A6"}
	_, err := s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "L", Symbols: six})
	wantCode(t, err, quotehub.ETooManySymbols)
	// Repeats count once.
	w := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "L", Symbols: append(six[:5:5], "a1", "A2")}))
	_, err = s.UpdateWatchlist(ctx(t), u, w.ID, quotehub.WatchlistUpdate{Symbols: &six}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.ETooManySymbols)
	for _, bad := range []string{"", "   ", "this name is longer than thirty-two", "tab\there"} {
		_, err = s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: bad})
		wantCode(t, err, quotehub.EBadRequest)
		_, err = s.UpdateWatchlist(ctx(t), u, w.ID, quotehub.WatchlistUpdate{Name: &bad}, quotehub.AnyVersion)
		wantCode(t, err, quotehub.EBadRequest)
	}
	// Thirty-two characters, not bytes.
	must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: strings.Repeat("관심종목", 8)}))
	for _, bad := range []string{"bad symbol", "NO!", "삼성"} {
		_, err = s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "X", Symbols: []string{"A1", bad}})
		wantCode(t, err, quotehub.EInvalidSymbol)
	}
	must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Third"}))
	_, err = s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Fourth"})
	wantCode(t, err, quotehub.EConflict)
	if got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, w.ID)); got.Version != 1 || len(got.Symbols) != 5 {
		t.Errorf("refused writes changed the list: %#v", got)
	}
	if n := len(must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))); n != 3 {
		t.Errorf("%d watchlists, want 3", n)
	}
}

func testUserIsolation(t *testing.T, s quotehub.UserStore) {
	alice, bob := user("a"), user("b")
	w := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), alice, quotehub.Watchlist{Name: "Mine", Symbols: []string{"A1"}}))
	r := must[quotehub.AlertRule](t)(s.CreateAlertRule(ctx(t), alice, quotehub.AlertRule{Symbol: "A1", Kind: quotehub.AlertAbove, Threshold: 10, Enabled: true}))
	must[quotehub.Portfolio](t)(s.PutPortfolio(ctx(t), alice, quotehub.Portfolio{Holdings: []quotehub.Holding{{Symbol: "A1", Quantity: 1, AvgCost: 1, Currency: "KRW"}}}, quotehub.AnyVersion))

	// Bob sees none of it, can touch none of it, and may use the same name.
	_, err := s.Watchlist(ctx(t), bob, w.ID)
	wantCode(t, err, quotehub.ENotFound)
	_, err = s.UpdateWatchlist(ctx(t), bob, w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"B1"}}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.ENotFound)
	_, err = s.UpdateWatchlist(ctx(t), bob, w.ID, quotehub.WatchlistUpdate{Symbols: &[]string{"B1"}}, 1)
	wantCode(t, err, quotehub.ENotFound)
	wantCode(t, s.DeleteWatchlist(ctx(t), bob, w.ID, quotehub.AnyVersion), quotehub.ENotFound)
	_, err = s.AlertRule(ctx(t), bob, r.ID)
	wantCode(t, err, quotehub.ENotFound)
	_, err = s.UpdateAlertRule(ctx(t), bob, r.ID, quotehub.AlertRuleUpdate{Enabled: ptr(false)}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.ENotFound)
	wantCode(t, s.DeleteAlertRule(ctx(t), bob, r.ID, quotehub.AnyVersion), quotehub.ENotFound)
	if ws := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), bob)); len(ws) != 0 {
		t.Errorf("bob sees %v", ws)
	}
	if p := must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), bob)); len(p.Holdings) != 0 || p.Version != 0 {
		t.Errorf("bob's portfolio: %#v", p)
	}
	must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), bob, quotehub.Watchlist{Name: "Mine"}))

	got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), alice, w.ID))
	if got.Version != 1 || !slices.Equal(got.Symbols, []string{"A1"}) {
		t.Errorf("alice's list after bob's attempts: %#v", got)
	}
	if rr := must[quotehub.AlertRule](t)(s.AlertRule(ctx(t), alice, r.ID)); rr.Version != 1 || !rr.Enabled {
		t.Errorf("alice's rule after bob's attempts: %#v", rr)
	}
}

// metacharacters are strings that break a query built by concatenation.
var metacharacters = []string{`'`, `"`, `\`, `%`, `_`, `' OR '1'='1`, `'; DROP TABLE watchlists; --`, "`", `*/ --`, `\'; --`}

func testMetacharacters(t *testing.T, s quotehub.UserStore) {
	base := user("")
	other := user("")
	must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), other, quotehub.Watchlist{Name: "other's", Symbols: []string{"A1"}}))
	for i, m := range metacharacters {
		u := base + m
		name := fmt.Sprintf("%d%s", i, m)
		w := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: name, Symbols: []string{"A1"}}))
		got := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))
		if len(got) != 1 || got[0].Name != name || got[0].ID != w.ID {
			t.Errorf("user %q: %#v", u, got)
		}
		_, err := s.Watchlist(ctx(t), u, m)
		wantCode(t, err, quotehub.ENotFound)
		_, err = s.Watchlist(ctx(t), u, w.ID+m)
		wantCode(t, err, quotehub.ENotFound)
		wantCode(t, s.DeleteWatchlist(ctx(t), u, m, quotehub.AnyVersion), quotehub.ENotFound)
	}
	// The wildcard users see only their own list; the other user keeps hers.
	if got := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), base+`%`)); len(got) != 1 {
		t.Errorf("user %q sees %d lists", base+`%`, len(got))
	}
	if got := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), other)); len(got) != 1 || got[0].Name != "other's" {
		t.Errorf("other user: %#v", got)
	}
	if got := must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), base)); len(got) != 0 {
		t.Errorf("the prefix user sees %#v", got)
	}
}

func testConcurrentWriters(t *testing.T, s quotehub.UserStore) {
	u := user("")
	w := must[quotehub.Watchlist](t)(s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "L", Symbols: []string{"A0"}}))
	for round := range 8 {
		lists := [2][]string{{"A1", "A2", "A3"}, {"B1", "B2", "B3", "B4"}}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 {
			wg.Go(func() {
				<-start
				_, errs[i] = s.UpdateWatchlist(ctx(t), u, w.ID, quotehub.WatchlistUpdate{Symbols: &lists[i], Name: ptr(fmt.Sprintf("L%d", i))}, w.Version)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch quotehub.ErrorCode(err) {
			case "":
				if winner >= 0 {
					t.Fatalf("round %d: both writers of version %d won", round, w.Version)
				}
				winner = i
			case quotehub.EPreconditionFailed:
			default:
				t.Fatalf("round %d: writer %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		got := must[quotehub.Watchlist](t)(s.Watchlist(ctx(t), u, w.ID))
		if got.Version != w.Version+1 || !slices.Equal(got.Symbols, lists[winner]) || got.Name != fmt.Sprintf("L%d", winner) {
			t.Fatalf("round %d: stored %#v, want all of writer %d's %v", round, got, winner, lists[winner])
		}
		w = got
	}

	// Two creations of one name: one wins, one conflicts, one list exists.
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = s.CreateWatchlist(ctx(t), u, quotehub.Watchlist{Name: "Same", Symbols: []string{"A1", "A2"}})
		})
	}
	wg.Wait()
	codes := []string{quotehub.ErrorCode(errs[0]), quotehub.ErrorCode(errs[1])}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{"", quotehub.EConflict}) {
		t.Fatalf("two creations of one name: %v", errs)
	}
	if n := len(must[[]quotehub.Watchlist](t)(s.Watchlists(ctx(t), u))); n != 2 {
		t.Fatalf("%d watchlists, want 2", n)
	}

	// Unconditional trades from two writers both apply, in some order.
	for i := range 2 {
		wg.Go(func() {
			for range 5 {
				if _, _, err := s.AddTrade(ctx(t), u, quotehub.Trade{Symbol: "A1", Side: quotehub.Buy, Quantity: 1, Price: float64(100 * (i + 1)), Currency: "KRW"}, quotehub.AnyVersion); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	p := must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), u))
	if p.Version != 10 || len(p.Holdings) != 1 || p.Holdings[0].Quantity != 10 || math.Abs(p.Holdings[0].AvgCost-150) > 1e-9 {
		t.Fatalf("after 10 concurrent buys: %#v", p)
	}

	// Two replacements of one portfolio version: one lands whole.
	sets := [2][]quotehub.Holding{
		{{Symbol: "A1", Quantity: 1, Currency: "KRW"}, {Symbol: "A2", Quantity: 2, Currency: "KRW"}},
		{{Symbol: "B1", Quantity: 3, Currency: "USD"}, {Symbol: "B2", Quantity: 4, Currency: "USD"}, {Symbol: "B3", Quantity: 5, Currency: "USD"}},
	}
	errs = make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			_, errs[i] = s.PutPortfolio(ctx(t), u, quotehub.Portfolio{Holdings: sets[i]}, p.Version)
		})
	}
	wg.Wait()
	p2 := must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), u))
	won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
	lost := quotehub.ErrorCode(errs[1-max(won, 0)])
	if won < 0 || lost != quotehub.EPreconditionFailed || p2.Version != p.Version+1 || !slices.Equal(p2.Holdings, sets[won]) {
		t.Fatalf("two writers of portfolio version %d: %v; stored %#v", p.Version, errs, p2)
	}

	// Alerts appended at once get distinct ids, one after another.
	ids := make(chan int64, 10)
	for range 2 {
		wg.Go(func() {
			for range 5 {
				a, err := s.AppendFiredAlert(ctx(t), u, quotehub.FiredAlert{RuleID: 1, Symbol: "A1", Kind: quotehub.AlertAbove})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- a.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	var got []int64
	for id := range ids {
		got = append(got, id)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("ids of 10 concurrent alerts: %v", got)
	}
}

func testPortfolio(t *testing.T, s quotehub.UserStore) {
	u := user("")
	// Version 0 is the portfolio never written: expecting it works once.
	hs := []quotehub.Holding{
		{Symbol: "aapl", Quantity: 10, AvgCost: 150.5, Currency: "usd"},
		{Symbol: "KRW-BTC", Quantity: 0.25, AvgCost: 90_000_000, Currency: "KRW"},
		{Symbol: "005930.KS", Quantity: 3, AvgCost: 0, Currency: "KRW"},
	}
	p := must[quotehub.Portfolio](t)(s.PutPortfolio(ctx(t), u, quotehub.Portfolio{BaseCurrency: "usd", Holdings: hs}, 0))
	want := []quotehub.Holding{
		{Symbol: "AAPL", Quantity: 10, AvgCost: 150.5, Currency: "USD"},
		{Symbol: "KRW-BTC", Quantity: 0.25, AvgCost: 90_000_000, Currency: "KRW"},
		{Symbol: "005930.KS", Quantity: 3, AvgCost: 0, Currency: "KRW"},
	}
	if p.Version != 1 || p.BaseCurrency != "USD" || !slices.Equal(p.Holdings, want) || p.UpdatedAt.IsZero() {
		t.Fatalf("PutPortfolio = %#v", p)
	}
	if got := must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), u)); got.Version != 1 || !slices.Equal(got.Holdings, want) || got.BaseCurrency != "USD" {
		t.Fatalf("Portfolio = %#v", got)
	}
	_, err := s.PutPortfolio(ctx(t), u, quotehub.Portfolio{}, 0)
	wantCode(t, err, quotehub.EPreconditionFailed)
	// Reordered, one dropped, base currency defaulted.
	p = must[quotehub.Portfolio](t)(s.PutPortfolio(ctx(t), u, quotehub.Portfolio{Holdings: []quotehub.Holding{want[2], want[0]}}, 1))
	if p.Version != 2 || p.BaseCurrency != quotehub.DefaultBaseCurrency || !slices.Equal(p.Holdings, []quotehub.Holding{want[2], want[0]}) {
		t.Fatalf("second PutPortfolio = %#v", p)
	}
	bad := []quotehub.Portfolio{
		{BaseCurrency: "dollars"},
		{BaseCurrency: "U$D"},
		{Holdings: []quotehub.Holding{want[0], want[0]}},
		{Holdings: []quotehub.Holding{{Symbol: "AAPL", Quantity: 0, Currency: "USD"}}},
		{Holdings: []quotehub.Holding{{Symbol: "AAPL", Quantity: -1, Currency: "USD"}}},
		{Holdings: []quotehub.Holding{{Symbol: "AAPL", Quantity: 1, AvgCost: -1, Currency: "USD"}}},
		{Holdings: []quotehub.Holding{{Symbol: "AAPL", Quantity: 1, Currency: ""}}},
	}
	for _, b := range bad {
		_, err := s.PutPortfolio(ctx(t), u, b, quotehub.AnyVersion)
		wantCode(t, err, quotehub.EBadRequest)
	}
	_, err = s.PutPortfolio(ctx(t), u, quotehub.Portfolio{Holdings: []quotehub.Holding{{Symbol: "NO SUCH", Quantity: 1, Currency: "USD"}}}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.EInvalidSymbol)
	five := make([]quotehub.Holding, 5)
	for i := range five {
		five[i] = quotehub.Holding{Symbol: fmt.Sprintf("A%d", i), Quantity: 1, Currency: "KRW"}
	}
	_, err = s.PutPortfolio(ctx(t), u, quotehub.Portfolio{Holdings: five}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.ETooManySymbols)
	must[quotehub.Portfolio](t)(s.PutPortfolio(ctx(t), u, quotehub.Portfolio{Holdings: five[:4]}, quotehub.AnyVersion))
	p = must[quotehub.Portfolio](t)(s.PutPortfolio(ctx(t), u, quotehub.Portfolio{}, 3))
	if p.Version != 4 || len(p.Holdings) != 0 || p.Holdings == nil {
		t.Fatalf("emptied portfolio: %#v", p)
	}
}

func testTrades(t *testing.T, s quotehub.UserStore) {
	u := user("")
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	trade := func(side, sym string, qty, price float64, cur string, ifVersion int64) (quotehub.Portfolio, quotehub.Trade, error) {
		return s.AddTrade(ctx(t), u, quotehub.Trade{Symbol: sym, Side: side, Quantity: qty, Price: price, Currency: cur, Time: at}, ifVersion)
	}
	p, tr, err := trade(quotehub.Buy, "aapl", 10, 100, "usd", 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID != 1 || tr.Symbol != "AAPL" || !tr.Time.Equal(at) || p.Version != 1 ||
		!slices.Equal(p.Holdings, []quotehub.Holding{{Symbol: "AAPL", Quantity: 10, AvgCost: 100, Currency: "USD"}}) {
		t.Fatalf("first buy: %#v %#v", p, tr)
	}
	p, tr, err = trade(quotehub.Buy, "AAPL", 30, 200, "USD", 1)
	if err != nil || tr.ID != 2 || p.Holdings[0].Quantity != 40 || p.Holdings[0].AvgCost != 175 {
		t.Fatalf("second buy: %#v %#v %v (want 40 at an average of 175)", p, tr, err)
	}
	p, _, err = trade(quotehub.Buy, "KRW-BTC", 0.5, 1000, "KRW", quotehub.AnyVersion)
	if err != nil || len(p.Holdings) != 2 || p.Holdings[1].Symbol != "KRW-BTC" {
		t.Fatalf("buy of a new symbol: %#v %v", p, err)
	}
	p, _, err = trade(quotehub.Sell, "AAPL", 15, 500, "USD", quotehub.AnyVersion)
	if err != nil || p.Holdings[0].Quantity != 25 || p.Holdings[0].AvgCost != 175 {
		t.Fatalf("sell keeps the average cost: %#v %v", p, err)
	}
	version := p.Version
	// Refused trades change nothing and record nothing.
	_, _, err = trade(quotehub.Sell, "AAPL", 26, 500, "USD", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EConflict)
	_, _, err = trade(quotehub.Sell, "KRW-ETH", 1, 500, "KRW", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EConflict)
	_, _, err = trade(quotehub.Buy, "AAPL", 1, 500, "KRW", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	_, _, err = trade("hold", "AAPL", 1, 500, "USD", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	_, _, err = trade(quotehub.Buy, "AAPL", 0, 500, "USD", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	_, _, err = trade(quotehub.Buy, "AAPL", 1, -5, "USD", quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	_, _, err = trade(quotehub.Buy, "AAPL", 1, 5, "USD", version-1)
	wantCode(t, err, quotehub.EPreconditionFailed)
	for _, sym := range []string{"A1", "A2", "A3"} {
		if _, _, err = trade(quotehub.Buy, sym, 1, 1, "KRW", quotehub.AnyVersion); err != nil && sym != "A3" {
			t.Fatal(err)
		}
	}
	wantCode(t, err, quotehub.ETooManySymbols) // the fifth holding
	p = must[quotehub.Portfolio](t)(s.Portfolio(ctx(t), u))
	if p.Version != version+2 || len(p.Holdings) != 4 || p.Holdings[0].Quantity != 25 {
		t.Fatalf("after refused trades: %#v (version %d)", p, version)
	}
	// Selling everything removes the holding, even after fractional buys.
	for range 3 {
		if _, _, err := trade(quotehub.Buy, "KRW-BTC", 0.1, 1000, "KRW", quotehub.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	p, tr, err = trade(quotehub.Sell, "KRW-BTC", 0.8, 2000, "KRW", quotehub.AnyVersion)
	if err != nil || len(p.Holdings) != 3 || slices.ContainsFunc(p.Holdings, func(h quotehub.Holding) bool { return h.Symbol == "KRW-BTC" }) {
		t.Fatalf("sell of everything: %#v %v", p, err)
	}
	ts := must[[]quotehub.Trade](t)(s.Trades(ctx(t), u, 3))
	if len(ts) != 3 || ts[0].ID != tr.ID || ts[1].ID != tr.ID-1 || ts[0].Side != quotehub.Sell || ts[0].Quantity != 0.8 {
		t.Fatalf("Trades = %#v, want the newest three, newest first", ts)
	}
}

func testAlertRules(t *testing.T, s quotehub.UserStore) {
	u := user("")
	a := must[quotehub.AlertRule](t)(s.CreateAlertRule(ctx(t), u, quotehub.AlertRule{Symbol: "krw-btc", Kind: quotehub.AlertAbove, Threshold: 100, Rearm: 0.05, Enabled: true}))
	if a.ID <= 0 || a.ID >= 1<<53 || a.Symbol != "KRW-BTC" || a.Version != 1 || !a.Enabled || a.CreatedAt.IsZero() {
		t.Fatalf("created %#v", a)
	}
	b := must[quotehub.AlertRule](t)(s.CreateAlertRule(ctx(t), u, quotehub.AlertRule{Symbol: "AAPL", Kind: quotehub.AlertMovePct, Threshold: 5}))
	if got := must[quotehub.AlertRule](t)(s.AlertRule(ctx(t), u, a.ID)); got.ID != a.ID || got.Threshold != 100 || got.Rearm != 0.05 || got.Kind != a.Kind || !got.Enabled {
		t.Errorf("AlertRule = %#v", got)
	}
	rs := must[[]quotehub.AlertRule](t)(s.AlertRules(ctx(t), u))
	if len(rs) != 2 || rs[0].ID != a.ID || rs[1].ID != b.ID || rs[1].Enabled {
		t.Fatalf("AlertRules = %#v", rs)
	}
	b2 := must[quotehub.AlertRule](t)(s.UpdateAlertRule(ctx(t), u, b.ID, quotehub.AlertRuleUpdate{Enabled: ptr(true), Threshold: ptr(-7.5)}, 1))
	if b2.Version != 2 || !b2.Enabled || b2.Threshold != -7.5 || b2.Kind != quotehub.AlertMovePct || b2.Symbol != "AAPL" {
		t.Errorf("updated %#v", b2)
	}
	_, err := s.UpdateAlertRule(ctx(t), u, b.ID, quotehub.AlertRuleUpdate{Enabled: ptr(false)}, 1)
	wantCode(t, err, quotehub.EPreconditionFailed)
	_, err = s.UpdateAlertRule(ctx(t), u, b.ID, quotehub.AlertRuleUpdate{Kind: ptr("sideways")}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	_, err = s.UpdateAlertRule(ctx(t), u, b.ID, quotehub.AlertRuleUpdate{Threshold: ptr(0.0)}, quotehub.AnyVersion)
	wantCode(t, err, quotehub.EBadRequest)
	if got := must[quotehub.AlertRule](t)(s.AlertRule(ctx(t), u, b.ID)); got.Version != 2 || got.Threshold != -7.5 {
		t.Errorf("refused updates changed the rule: %#v", got)
	}
	for _, bad := range []quotehub.AlertRule{
		{Symbol: "AAPL", Kind: "sideways", Threshold: 1},
		{Symbol: "AAPL", Kind: quotehub.AlertBelow, Threshold: 0},
		{Symbol: "AAPL", Kind: quotehub.AlertAbove, Threshold: -3},
		{Symbol: "AAPL", Kind: quotehub.AlertCross, Threshold: 1, Rearm: -0.1},
		{Symbol: "AAPL", Kind: quotehub.AlertCross, Threshold: 1, Rearm: 0.6},
		{Symbol: "AAPL", Kind: quotehub.AlertMovePct, Threshold: 5000},
		{Symbol: "AAPL", Kind: quotehub.AlertMovePct, Threshold: 0},
	} {
		_, err := s.CreateAlertRule(ctx(t), u, bad)
		wantCode(t, err, quotehub.EBadRequest)
	}
	_, err = s.CreateAlertRule(ctx(t), u, quotehub.AlertRule{Symbol: "A A", Kind: quotehub.AlertAbove, Threshold: 1})
	wantCode(t, err, quotehub.EInvalidSymbol)
	c := must[quotehub.AlertRule](t)(s.CreateAlertRule(ctx(t), u, quotehub.AlertRule{Symbol: "AAPL", Kind: quotehub.AlertCross, Threshold: 1}))
	_, err = s.CreateAlertRule(ctx(t), u, quotehub.AlertRule{Symbol: "AAPL", Kind: quotehub.AlertCross, Threshold: 2})
	wantCode(t, err, quotehub.EConflict)

	// The evaluator's view: enabled rules of every user, paged in order.
	v := user("")
	d := must[quotehub.AlertRule](t)(s.CreateAlertRule(ctx(t), v, quotehub.AlertRule{Symbol: "A1", Kind: quotehub.AlertBelow, Threshold: 3, Enabled: true}))
	var mine []string
	var afterID int64
	for {
		page := must[[]quotehub.AlertRule](t)(s.EnabledAlertRules(ctx(t), afterID, 2))
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			if !r.Enabled || r.ID <= afterID {
				t.Fatalf("EnabledAlertRules after %d: %#v", afterID, r)
			}
			if r.UserID == u || r.UserID == v {
				mine = append(mine, fmt.Sprintf("%s/%d", r.UserID, r.ID))
			}
			afterID = r.ID
		}
	}
	want := []quotehub.AlertRule{a, b, d}
	slices.SortFunc(want, func(x, y quotehub.AlertRule) int { return cmp.Compare(x.ID, y.ID) })
	var wantIDs []string
	for _, r := range want {
		wantIDs = append(wantIDs, fmt.Sprintf("%s/%d", map[bool]string{true: u, false: v}[r.ID != d.ID], r.ID))
	}
	if !slices.Equal(mine, wantIDs) {
		t.Errorf("EnabledAlertRules paged %v, want %v in id order (%d is disabled)", mine, wantIDs, c.ID)
	}

	wantCode(t, s.DeleteAlertRule(ctx(t), u, a.ID, 2), quotehub.EPreconditionFailed)
	if err := s.DeleteAlertRule(ctx(t), u, a.ID, 1); err != nil {
		t.Fatal(err)
	}
	_, err = s.AlertRule(ctx(t), u, a.ID)
	wantCode(t, err, quotehub.ENotFound)
	if rs := must[[]quotehub.AlertRule](t)(s.AlertRules(ctx(t), u)); len(rs) != 2 || rs[0].ID != b.ID || rs[1].ID != c.ID {
		t.Errorf("after delete: %#v", rs)
	}
}

func testFiredAlerts(t *testing.T, s quotehub.UserStore) {
	u, v := user(""), user("")
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	for i := range 6 {
		a := must[quotehub.FiredAlert](t)(s.AppendFiredAlert(ctx(t), u, quotehub.FiredAlert{ID: 99, RuleID: 11, Symbol: "A1", Kind: quotehub.AlertAbove, Threshold: 10, Direction: "up", Price: 10 + float64(i), PrevClose: 9.5, Time: at}))
		if a.ID != int64(i+1) || !a.Time.Equal(at) {
			t.Fatalf("alert %d: %#v", i, a)
		}
	}
	if a := must[quotehub.FiredAlert](t)(s.AppendFiredAlert(ctx(t), v, quotehub.FiredAlert{RuleID: 12, Symbol: "A1", Kind: quotehub.AlertBelow})); a.ID != 1 || a.Time.IsZero() {
		t.Fatalf("another user's first alert: %#v", a)
	}
	ids := func(fs []quotehub.FiredAlert) []int64 {
		out := []int64{}
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	// The window keeps the newest four.
	all := must[[]quotehub.FiredAlert](t)(s.FiredAlerts(ctx(t), u, 0, 100))
	if !slices.Equal(ids(all), []int64{3, 4, 5, 6}) || all[0].Price != 12 || all[0].RuleID != 11 || all[0].Kind != quotehub.AlertAbove || !all[0].Time.Equal(at) ||
		all[0].Direction != "up" || all[0].PrevClose != 9.5 {
		t.Fatalf("FiredAlerts(0) = %#v", all)
	}
	if got := ids(must[[]quotehub.FiredAlert](t)(s.FiredAlerts(ctx(t), u, 3, 2))); !slices.Equal(got, []int64{4, 5}) {
		t.Errorf("FiredAlerts(after 3, 2) = %v", got)
	}
	if got := ids(must[[]quotehub.FiredAlert](t)(s.FiredAlerts(ctx(t), u, 6, 10))); len(got) != 0 {
		t.Errorf("FiredAlerts(after the newest) = %v", got)
	}
	if got := ids(must[[]quotehub.FiredAlert](t)(s.FiredAlerts(ctx(t), v, 0, 10))); !slices.Equal(got, []int64{1}) {
		t.Errorf("the other user's alerts: %v", got)
	}
}
