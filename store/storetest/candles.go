package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"quotehub"
	"quotehub/internal/poll"
)

// candleBase is a day start (2026-12-01 00:00 UTC) for the suites' candles.
var candleBase = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// dayCandles returns n closed day candles from day `from` on, their values
// derived from seed, so different writes of one day can be told apart.
func dayCandles(from, n int, seed float64) []quotehub.Candle {
	out := make([]quotehub.Candle, n)
	for i := range out {
		d := float64(from + i)
		out[i] = quotehub.Candle{
			T:    candleBase.AddDate(0, 0, from+i).UnixMilli(),
			Open: 100 + d + seed, High: 110 + d + seed, Low: 90 + d + seed, Close: 105 + d + seed,
			V: 1000.5 + d, Closed: true,
		}
	}
	return out
}

// TestCandleStore is the conformance suite of quotehub.CandleStore. The
// factory may share a backend between calls; the suite's symbols are
// unique to each subtest.
func TestCandleStore(t *testing.T, newStore func(t *testing.T) quotehub.CandleStore) {
	ctx := context.Background()
	day := func(i int) time.Time { return candleBase.AddDate(0, 0, i) }

	t.Run("RoundTripInOrder", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Day1}
		cs := dayCandles(0, 10, 0)
		shuffled := slices.Clone(cs)
		slices.Reverse(shuffled)
		if err := st.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: s, Candles: shuffled}}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Candles(ctx, s, day(0), day(10))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, cs) {
			t.Fatalf("Candles = %v\nwant %v", got, cs)
		}
	})

	t.Run("RangeIsHalfOpen", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Day1}
		cs := dayCandles(0, 10, 0)
		mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: cs})
		got, err := st.Candles(ctx, s, day(3), day(6))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, cs[3:6]) {
			t.Fatalf("[day 3, day 6) = %v, want days 3, 4, 5", got)
		}
		got, _ = st.Candles(ctx, s, day(20), day(30))
		if len(got) != 0 {
			t.Fatalf("an empty range gave %v", got)
		}
	})

	t.Run("ClosedCandlesAreImmutable", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Day1}
		first := dayCandles(0, 5, 0)
		mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: first})
		// The same periods again with other values, and two new ones.
		mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: dayCandles(3, 4, 7)})
		got, _ := st.Candles(ctx, s, day(0), day(10))
		want := append(slices.Clone(first), dayCandles(5, 2, 7)...)
		if !slices.Equal(got, want) {
			t.Fatalf("after an overlapping write = %v\nwant the first values kept: %v", got, want)
		}
	})

	t.Run("RepeatedWriteIsIdempotent", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Hour1}
		cs := dayCandles(0, 3, 0)
		for range 3 {
			mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: cs})
		}
		got, _ := st.Candles(ctx, s, day(0), day(3))
		if !slices.Equal(got, cs) {
			t.Fatalf("after three equal writes = %v", got)
		}
	})

	t.Run("SeriesAreSeparate", func(t *testing.T) {
		st := newStore(t)
		a, b := symbol(t), symbol(t)
		sa := quotehub.CandleSeries{Symbol: a, Interval: quotehub.Day1}
		sb := quotehub.CandleSeries{Symbol: b, Interval: quotehub.Day1}
		sw := quotehub.CandleSeries{Symbol: a, Interval: quotehub.Week1}
		// One batch across series, as daily closes are written.
		mustPut(t, st,
			quotehub.CandleBatch{CandleSeries: sa, Candles: dayCandles(0, 2, 1)},
			quotehub.CandleBatch{CandleSeries: sb, Candles: dayCandles(0, 2, 2)},
			quotehub.CandleBatch{CandleSeries: sw, Candles: dayCandles(0, 1, 3)})
		for _, c := range []struct {
			s    quotehub.CandleSeries
			want []quotehub.Candle
		}{{sa, dayCandles(0, 2, 1)}, {sb, dayCandles(0, 2, 2)}, {sw, dayCandles(0, 1, 3)}} {
			got, _ := st.Candles(ctx, c.s, day(0), day(5))
			if !slices.Equal(got, c.want) {
				t.Errorf("%s = %v, want %v", c.s, got, c.want)
			}
		}
	})

	t.Run("ErrOpenCandle", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Day1}
		cs := dayCandles(0, 3, 0)
		cs[2].Closed = false
		err := st.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: s, Candles: cs}})
		if quotehub.ErrorCode(err) != quotehub.EBadRequest {
			t.Fatalf("PutCandles with an open candle: %v, want bad_request", err)
		}
		if got, _ := st.Candles(ctx, s, day(0), day(3)); len(got) != 0 {
			t.Fatalf("a refused batch stored %v", got)
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		// More rows than one statement carries: all of them or none.
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Minute1}
		cs := make([]quotehub.Candle, 1203)
		for i := range cs {
			cs[i] = quotehub.Candle{T: candleBase.Add(time.Duration(i) * time.Minute).UnixMilli(),
				Open: float64(i), High: float64(i) + 1, Low: float64(i) - 1, Close: float64(i), V: 1, Closed: true}
		}
		mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: cs})
		got, _ := st.Candles(ctx, s, day(0), day(1))
		if !slices.Equal(got, cs) {
			t.Fatalf("got %d candles back of %d", len(got), len(cs))
		}
		bad := slices.Clone(cs)
		for i := range bad {
			bad[i].T += int64(24 * time.Hour / time.Millisecond)
		}
		bad[len(bad)-1].Closed = false
		if err := st.PutCandles(ctx, []quotehub.CandleBatch{{CandleSeries: s, Candles: bad}}); quotehub.ErrorCode(err) != quotehub.EBadRequest {
			t.Fatalf("a large batch ending with an open candle: %v", err)
		}
		if got, _ := st.Candles(ctx, s, day(1), day(2)); len(got) != 0 {
			t.Fatalf("a refused large batch stored %d candles", len(got))
		}
	})

	t.Run("ValuesSurviveExactly", func(t *testing.T) {
		st := newStore(t)
		s := quotehub.CandleSeries{Symbol: symbol(t), Interval: quotehub.Minute1}
		c := quotehub.Candle{T: candleBase.UnixMilli(), Open: 0.000123456789, High: 143250000.5,
			Low: 1e-7, Close: 98765.4321, V: 12345678.87654321, Closed: true}
		mustPut(t, st, quotehub.CandleBatch{CandleSeries: s, Candles: []quotehub.Candle{c}})
		got, _ := st.Candles(ctx, s, day(0), day(1))
		if len(got) != 1 || got[0] != c {
			t.Fatalf("got %v, want %v", got, c)
		}
	})
}

func mustPut(t *testing.T, st quotehub.CandleStore, batches ...quotehub.CandleBatch) {
	t.Helper()
	if err := st.PutCandles(context.Background(), batches); err != nil {
		t.Fatal(err)
	}
}

// TestCandleCache is the conformance suite of quotehub.CandleCache. Keys
// are unique to each subtest.
func TestCandleCache(t *testing.T, newCache func(t *testing.T) quotehub.CandleCache) {
	ctx := context.Background()
	key := func(t *testing.T, label string) string {
		return fmt.Sprintf("candles:{%s}:1d:%s", symbol(t), label)
	}

	t.Run("MissThenHit", func(t *testing.T) {
		c := newCache(t)
		k1, k2, k3 := key(t, "2026-11"), key(t, "2026-12"), key(t, "2027-01")
		cs := dayCandles(0, 30, 0)
		if err := c.PutChunk(ctx, k2, cs, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := c.PutChunk(ctx, k3, nil, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, ok, err := c.GetChunks(ctx, []string{k1, k2, k3})
		if err != nil {
			t.Fatal(err)
		}
		if ok[0] || got[0] != nil {
			t.Errorf("never-written chunk: %v %v", got[0], ok[0])
		}
		if !ok[1] || !slices.Equal(got[1], cs) {
			t.Errorf("chunk = %v %v, want the 30 candles", got[1], ok[1])
		}
		if !ok[2] || len(got[2]) != 0 {
			t.Errorf("an empty chunk is a hit with no candles: %v %v", got[2], ok[2])
		}
	})

	t.Run("OpenCandleKeepsItsFlag", func(t *testing.T) {
		c := newCache(t)
		k := key(t, "2026-12")
		cs := dayCandles(0, 2, 0)
		cs[1].Closed = false
		_ = c.PutChunk(ctx, k, cs, time.Now().Add(time.Hour))
		got, _, _ := c.GetChunks(ctx, []string{k})
		if !slices.Equal(got[0], cs) {
			t.Fatalf("got %v, want %v", got[0], cs)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		c := newCache(t)
		k := key(t, "2026-12")
		_ = c.PutChunk(ctx, k, dayCandles(0, 2, 0), time.Now().Add(time.Hour))
		_ = c.PutChunk(ctx, k, dayCandles(0, 3, 1), time.Now().Add(time.Hour))
		got, _, _ := c.GetChunks(ctx, []string{k})
		if !slices.Equal(got[0], dayCandles(0, 3, 1)) {
			t.Fatalf("got %v, want the second write", got[0])
		}
	})

	t.Run("ExpiresAtItsTime", func(t *testing.T) {
		c := newCache(t)
		k, past := key(t, "2026-12"), key(t, "2026-11")
		_ = c.PutChunk(ctx, past, dayCandles(0, 1, 0), time.Now().Add(-time.Second))
		if _, ok, _ := c.GetChunks(ctx, []string{past}); ok[0] {
			t.Fatal("a chunk whose expiry has passed is served")
		}
		expireAt := time.Now().Add(300 * time.Millisecond)
		_ = c.PutChunk(ctx, k, dayCandles(0, 1, 0), expireAt)
		if _, ok, _ := c.GetChunks(ctx, []string{k}); !ok[0] && time.Now().Before(expireAt) {
			t.Fatal("a chunk is gone before its expiry")
		}
		poll.Until(t, 2*time.Second, "the chunk to expire", func() bool {
			_, ok, _ := c.GetChunks(ctx, []string{k})
			if ok[0] {
				return false
			}
			if time.Now().Before(expireAt) {
				t.Fatalf("the chunk expired before %v", expireAt)
			}
			return true
		})
	})
}
