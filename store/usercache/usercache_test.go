package usercache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"quotehub"
	"quotehub/store/sqlite"
	"quotehub/store/sqlstore"
	"quotehub/store/storetest"
	"quotehub/store/usercache"
)

func openSQLite(t *testing.T, lim quotehub.UserLimits) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlstore.Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The cached store is a user store like any other.
func TestUserStoreConformance(t *testing.T) {
	storetest.TestUserStore(t, func(t *testing.T, lim quotehub.UserLimits) quotehub.UserStore {
		return usercache.New(openSQLite(t, lim), 4, true)
	})
}

// counting counts the portfolio reads that reach the store; a read of
// a user in block waits for a receive on the channel before answering.
type counting struct {
	quotehub.UserStore
	reads atomic.Int64
	block map[string]chan chan struct{}
}

func (c *counting) Portfolio(ctx context.Context, user string) (quotehub.Portfolio, error) {
	c.reads.Add(1)
	p, err := c.UserStore.Portfolio(ctx, user)
	if ch := c.block[user]; ch != nil {
		release := make(chan struct{})
		ch <- release
		<-release
	}
	return p, err
}

func holding(sym string, qty float64) quotehub.Portfolio {
	return quotehub.Portfolio{BaseCurrency: "KRW", Holdings: []quotehub.Holding{{Symbol: sym, Quantity: qty, AvgCost: 1, Currency: "KRW"}}}
}

func put(t *testing.T, st quotehub.UserStore, user string, p quotehub.Portfolio) quotehub.Portfolio {
	t.Helper()
	p, err := st.PutPortfolio(context.Background(), user, p, quotehub.AnyVersion)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, st quotehub.UserStore, user string) quotehub.Portfolio {
	t.Helper()
	p, err := st.Portfolio(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newCounting(t *testing.T) *counting {
	return &counting{UserStore: openSQLite(t, quotehub.UserLimits{}), block: map[string]chan chan struct{}{}}
}

// A second read is served from memory; a write on this node, or an
// invalidation (another node's write, told by the bus), makes the next
// read go to the store and see the change.
func TestHitsAndInvalidation(t *testing.T) {
	raw := newCounting(t)
	c := usercache.New(raw, 10, true)
	put(t, c, "alice", holding("KRW-BTC", 1))
	read(t, c, "alice")
	if p := read(t, c, "alice"); raw.reads.Load() != 1 || p.Holdings[0].Quantity != 1 {
		t.Fatalf("store reads = %d, portfolio %+v: want one read", raw.reads.Load(), p)
	}
	// A caller editing what it got does not change the cache.
	p := read(t, c, "alice")
	p.Holdings[0].Quantity = 99
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 1 {
		t.Fatalf("the cached holdings were changed through a read: %+v", p)
	}

	put(t, c, "alice", holding("KRW-BTC", 2)) // this node's write
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 2 || p.Version != 2 {
		t.Fatalf("after a local write: %+v", p)
	}

	put(t, raw.UserStore, "alice", holding("KRW-BTC", 3)) // another node's write
	c.Invalidate("alice")                                 // its event arrives
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 3 || p.Version != 3 {
		t.Fatalf("after an invalidation: %+v", p)
	}
	if st := c.Stats(); st.Hits == 0 || st.Misses == 0 {
		t.Errorf("stats %+v", st)
	}
}

// A store read that started before an invalidation returns the old
// holdings; they are not kept, so the next read sees the new ones.
func TestReadRacingInvalidationIsNotKept(t *testing.T) {
	raw := newCounting(t)
	c := usercache.New(raw, 10, true)
	put(t, raw.UserStore, "alice", holding("KRW-BTC", 1))
	raw.block["alice"] = make(chan chan struct{})
	done := make(chan quotehub.Portfolio)
	go func() {
		p, _ := c.Portfolio(context.Background(), "alice")
		done <- p
	}()
	release := <-raw.block["alice"] // the read has the old holdings
	put(t, raw.UserStore, "alice", holding("KRW-BTC", 2))
	c.Invalidate("alice")
	close(release)
	if p := <-done; p.Holdings[0].Quantity != 1 {
		t.Fatalf("the racing read got %+v", p)
	}
	delete(raw.block, "alice")
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 2 {
		t.Fatalf("after the racing read, the cache serves %+v: the old holdings were kept", p)
	}
}

// While suspended (the bus down) every read goes to the store and nothing
// is kept; Resume serves again, from an empty cache; a cache built not
// live starts suspended.
func TestSuspendBypasses(t *testing.T) {
	raw := newCounting(t)
	c := usercache.New(raw, 10, false)
	put(t, raw.UserStore, "alice", holding("KRW-BTC", 1))
	read(t, c, "alice")
	read(t, c, "alice")
	if n := raw.reads.Load(); n != 2 || c.Len() != 0 {
		t.Fatalf("not live: store reads %d, held %d; want 2 and 0", n, c.Len())
	}
	c.Resume()
	read(t, c, "alice")
	read(t, c, "alice")
	if n := raw.reads.Load(); n != 3 {
		t.Fatalf("live: store reads %d, want 3", n)
	}
	c.Suspend()
	read(t, c, "alice")
	put(t, raw.UserStore, "alice", holding("KRW-BTC", 2)) // its event is lost
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 2 {
		t.Fatalf("suspended, the cache served %+v", p)
	}
	c.Resume()
	if p := read(t, c, "alice"); p.Holdings[0].Quantity != 2 {
		t.Fatalf("resumed: %+v", p)
	}
	// A read in flight across Suspend and Resume is not kept either.
	c.Clear()
	raw.block["alice"] = make(chan chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Portfolio(context.Background(), "alice")
	}()
	release := <-raw.block["alice"]
	c.Suspend()
	c.Resume()
	close(release)
	<-done
	if c.Len() != 0 {
		t.Fatalf("a read that spanned a suspension was kept")
	}
}

// At most size portfolios are kept, the least recently read dropped.
func TestBounded(t *testing.T) {
	raw := newCounting(t)
	c := usercache.New(raw, 2, true)
	for i := range 3 {
		put(t, raw.UserStore, fmt.Sprint("u", i), holding("KRW-BTC", float64(i+1)))
	}
	read(t, c, "u0")
	read(t, c, "u1")
	read(t, c, "u0") // u1 is now the least recent
	read(t, c, "u2")
	if c.Len() != 2 {
		t.Fatalf("held %d, want 2", c.Len())
	}
	before := raw.reads.Load()
	read(t, c, "u0")
	read(t, c, "u2")
	if raw.reads.Load() != before {
		t.Fatalf("u0 and u2 should be held")
	}
	read(t, c, "u1")
	if raw.reads.Load() != before+1 {
		t.Fatalf("u1 should have been dropped")
	}
	if usercache.New(raw, 0, true) == nil {
		t.Fatal("no store for the default size")
	}
}

// A store error is returned and nothing is kept.
func TestErrorNotKept(t *testing.T) {
	st := openSQLite(t, quotehub.UserLimits{})
	c := usercache.New(st, 10, true)
	put(t, st, "alice", holding("KRW-BTC", 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Portfolio(ctx, "alice"); err == nil {
		t.Fatal("a read under a cancelled context succeeded")
	}
	if c.Len() != 0 {
		t.Fatal("a failed read was kept")
	}
}
