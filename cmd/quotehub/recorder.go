package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/history"
	"quotehub/refresher"
)

// flushEvery is how often the candles that closed are written.
const flushEvery = time.Second

// newRecorder returns the recorder of the candles that close on this node:
// of the symbols it refreshes (ref, set once built) and owns; a day it saw
// only in part is read through candles once the close settled, which
// stores the upstream's final day candle.
func newRecorder(catalog quotehub.Catalog, store quotehub.CandleStore, owns func(string) bool,
	ref **refresher.Refresher, candles **history.Service, log *zerolog.Logger) *history.Recorder {
	l := log.With().Str("component", "candles").Logger()
	return history.NewRecorder(history.RecorderOptions{
		Calendar: func(sym string) (*quotehub.Calendar, bool) {
			info, ok, err := catalog.Lookup(context.Background(), sym)
			return quotehub.CalendarOf(info.Exchange), ok && err == nil
		},
		Store: store,
		Keeping: func() func(string) bool {
			tracked := map[string]bool{}
			for _, s := range (*ref).Tracked() {
				tracked[s] = owns == nil || owns(s)
			}
			return func(s string) bool { return tracked[s] }
		},
		DayClosed: func(ctx context.Context, s quotehub.CandleSeries, day quotehub.Period) {
			_, err := (*candles).Read(ctx, quotehub.CandleQuery{Symbol: s.Symbol, Interval: quotehub.Day1, From: day.Start, To: day.Start, Count: 1})
			if err != nil {
				l.Warn().Err(err).Str("symbol", s.Symbol).Msg("reading the day's close from the upstream failed")
			}
		},
		Logger: &l,
	})
}

// dayClose answers a cold read of a closed market from the last daily
// close in store (see refresher.Options.DayClose).
func dayClose(catalog quotehub.Catalog, store quotehub.CandleStore, route func(quotehub.SymbolInfo) string) func(context.Context, string) (quotehub.Quote, bool) {
	return func(ctx context.Context, sym string) (quotehub.Quote, bool) {
		info, ok, err := catalog.Lookup(ctx, sym)
		if err != nil || !ok {
			return quotehub.Quote{}, false
		}
		q, ok, err := history.DayCloseQuote(ctx, store, info, route(info), time.Now())
		return q, ok && err == nil
	}
}
