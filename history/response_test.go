package history_test

import (
	"context"
	"testing"
	"time"

	"quotehub"
)

// ChartJSON encodes a closed range once and serves the same bytes again;
// a range that reaches an open period is encoded at every read.
func TestChartJSONKeepsClosedRanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	closed := quotehub.CandleQuery{Symbol: "005930.KS", Interval: quotehub.Day1, To: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), Count: 50, MA: []int{5}}
	a, err := f.svc.ChartJSON(ctx, closed)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.svc.Chart(ctx, closed)
	if err != nil {
		t.Fatal(err)
	}
	if want := ch.AppendJSON(nil); string(a) != string(want) {
		t.Fatalf("ChartJSON differs from Chart's encoding:\n%s\n%s", a, want)
	}
	calls := f.src.calls.Load()
	b, _ := f.svc.ChartJSON(ctx, closed)
	if &a[0] != &b[0] || f.src.calls.Load() != calls {
		t.Fatal("a warm read of a closed range was encoded again")
	}
	other := closed
	other.MA = []int{20}
	if c, _ := f.svc.ChartJSON(ctx, other); &c[0] == &a[0] {
		t.Fatal("another query got the same bytes")
	}
	for _, q := range []quotehub.CandleQuery{
		{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 5},                                // up to now
		{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 5, To: testNow.Add(-time.Minute)}, // today's session is open
	} {
		x, err := f.svc.ChartJSON(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if y, _ := f.svc.ChartJSON(ctx, q); &x[0] == &y[0] {
			t.Errorf("%+v: a range reaching the open day was kept", q)
		}
	}
	if _, err := f.svc.ChartJSON(ctx, quotehub.CandleQuery{Symbol: "005930.KS", Interval: quotehub.Day1, Count: 5000}); quotehub.ErrorCode(err) != quotehub.EBadRequest {
		t.Errorf("count 5000: %v", err)
	}
}
