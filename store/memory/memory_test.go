package memory_test

import (
	"context"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"quotehub"
	"quotehub/store/memory"
	"quotehub/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCache(t *testing.T) {
	storetest.TestCache(t, func(t *testing.T) quotehub.Cache { return memory.NewCache() })
}

// AppendMany appends what GetMany gives to the slice it is given, in its
// memory when there is room.
func TestCacheAppendMany(t *testing.T) {
	ctx := context.Background()
	c := memory.NewCache()
	a := quotehub.Quote{Symbol: "A", Price: 1, Seq: 1}
	b := quotehub.Quote{Symbol: "B", Price: 2, Seq: 1}
	if _, err := c.PutMany(ctx, []quotehub.Quote{a, b}); err != nil {
		t.Fatal(err)
	}
	buf := make([]quotehub.Quote, 1, 8)
	buf[0] = quotehub.Quote{Symbol: "KEPT"}
	got, err := c.AppendMany(ctx, buf, []string{"B", "NONE", "A"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []quotehub.Quote{{Symbol: "KEPT"}, b, {}, a}; !slices.Equal(got, want) {
		t.Fatalf("AppendMany = %+v, want %+v", got, want)
	}
	if &got[0] != &buf[0] {
		t.Error("AppendMany did not append in the memory given")
	}
}

func TestActiveSet(t *testing.T) {
	storetest.TestActiveSet(t, func(t *testing.T) quotehub.ActiveSet { return memory.NewActiveSet() })
}

func TestCatalog(t *testing.T) {
	storetest.TestCatalog(t, func(t *testing.T, entries []quotehub.SymbolInfo) quotehub.Catalog {
		return memory.NewCatalog(entries)
	})
}

func TestBus(t *testing.T) {
	storetest.TestBus(t, func(t *testing.T, deliver func([]quotehub.Quote)) quotehub.Bus {
		b := memory.NewBus()
		b.Handle(deliver)
		// One node, one handler: the hub filters what nobody here watches.
		return storetest.DeliveringEverything(b)
	})
}

func TestCatalogLen(t *testing.T) {
	t.Run("duplicates count once", func(t *testing.T) {
		c := memory.NewCatalog([]quotehub.SymbolInfo{
			{Symbol: "AAPL", Name: "Apple"},
			{Symbol: "MSFT", Name: "Microsoft"},
			{Symbol: "AAPL", Name: "Apple Inc."},
		})
		if got := c.Len(); got != 2 {
			t.Errorf("Len = %d, want 2", got)
		}
	})
	t.Run("later duplicate replaces the earlier one", func(t *testing.T) {
		c := memory.NewCatalog([]quotehub.SymbolInfo{
			{Symbol: "AAPL", Name: "Apple"},
			{Symbol: "AAPL", Name: "Apple Inc."},
		})
		got, ok, err := c.Lookup(t.Context(), "AAPL")
		if err != nil || !ok || got.Name != "Apple Inc." {
			t.Errorf("Lookup(AAPL) = %+v, %v, %v; want the later entry", got, ok, err)
		}
	})
}

func TestBusWithoutHandler(t *testing.T) {
	t.Run("publish before Handle drops quotes without error", func(t *testing.T) {
		b := memory.NewBus()
		if err := b.Publish(t.Context(), []quotehub.Quote{{Symbol: "AAPL", Seq: 1}}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	})
	t.Run("empty batch is not handed to the handler", func(t *testing.T) {
		b := memory.NewBus()
		calls := 0
		b.Handle(func([]quotehub.Quote) { calls++ })
		if err := b.Publish(t.Context(), nil); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if calls != 0 {
			t.Errorf("handler called %d times for an empty batch, want 0", calls)
		}
	})
}

func TestUserBusConformance(t *testing.T) {
	storetest.TestUserBus(t, func(t *testing.T, deliver func(quotehub.UserEvent)) quotehub.UserBus {
		b := memory.NewUserBus()
		b.HandleUser(deliver)
		return b
	})
}

func TestCandleStore(t *testing.T) {
	storetest.TestCandleStore(t, func(t *testing.T) quotehub.CandleStore { return memory.NewCandleStore() })
}

func TestCandleCache(t *testing.T) {
	storetest.TestCandleCache(t, func(t *testing.T) quotehub.CandleCache { return memory.NewCandleCache(nil) })
}
