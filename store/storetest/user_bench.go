package storetest

import (
	"context"
	"fmt"
	"testing"

	"quotehub"
)

// BenchmarkUserStore measures the calls a signed-in page makes most: read
// a 20-symbol watchlist, replace its symbols under If-Match, read a
// 50-holding portfolio, and append a fired alert.
func BenchmarkUserStore(b *testing.B, s quotehub.UserStore) {
	ctx := context.Background()
	u := user("bench")
	syms := make([]string, 20)
	for i := range syms {
		syms[i] = fmt.Sprintf("B%02d", i)
	}
	w, err := s.CreateWatchlist(ctx, u, quotehub.Watchlist{Name: "Bench", Symbols: syms})
	if err != nil {
		b.Fatal(err)
	}
	hs := make([]quotehub.Holding, 50)
	for i := range hs {
		hs[i] = quotehub.Holding{Symbol: fmt.Sprintf("H%02d", i), Quantity: 1, AvgCost: 100, Currency: "KRW"}
	}
	if _, err := s.PutPortfolio(ctx, u, quotehub.Portfolio{Holdings: hs}, quotehub.AnyVersion); err != nil {
		b.Fatal(err)
	}
	b.Run("ReadWatchlist", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Watchlist(ctx, u, w.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateWatchlist", func(b *testing.B) {
		v := w.Version
		for b.Loop() {
			syms[0], syms[19] = syms[19], syms[0]
			got, err := s.UpdateWatchlist(ctx, u, w.ID, quotehub.WatchlistUpdate{Symbols: &syms}, v)
			if err != nil {
				b.Fatal(err)
			}
			v = got.Version
		}
	})
	b.Run("ReadPortfolio50", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Portfolio(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendFiredAlert", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.AppendFiredAlert(ctx, u, quotehub.FiredAlert{RuleID: 1, Symbol: "B00", Kind: quotehub.AlertAbove}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
