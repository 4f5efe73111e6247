package valuation

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"quotehub"
)

// sameJSON checks that the hand encoding of v decodes to what
// encoding/json's encoding of v decodes to, and is byte for byte the
// same (no value here needs HTML escaping).
func sameJSON(t *testing.T, v Valuation) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.AppendJSON([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("the buffer given was not appended to: %.40s", got)
	}
	got = got[len("prefix"):]
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("the hand encoding is not JSON: %v\n%s", err, got)
	}
	_ = json.Unmarshal(want, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoded differently:\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ:\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	holdings := []Holding{
		{Symbol: "005930.KS", Quantity: 10, AvgCost: 70000, Currency: "KRW"},
		{Symbol: "AAPL", Quantity: 2.5, AvgCost: 150.125, Currency: "USD"},
		{Symbol: "TINY", Quantity: 1e-9, AvgCost: 3e-7, Currency: "USD"},
		{Symbol: "HUGE", Quantity: 1e15, AvgCost: 1e9, Currency: "JPY"},
		{Symbol: "NOQUOTE", Quantity: 5, AvgCost: 1, Currency: "EUR"},
		{Symbol: `Q"\é`, Quantity: 1, AvgCost: 0, Currency: "KRW"},
	}
	all := quotes(
		quotehub.Quote{Symbol: "005930.KS", Price: 72000, PrevClose: 71000, FetchedAt: 10, Market: quotehub.MarketOpen},
		quotehub.Quote{Symbol: "AAPL", Price: 200.3, PrevClose: 190, FetchedAt: 30},
		quotehub.Quote{Symbol: "TINY", Price: 1e-8, PrevClose: 2e-8, FetchedAt: 30},
		quotehub.Quote{Symbol: "HUGE", Price: 1e9 + 0.5, FetchedAt: 31},
		quotehub.Quote{Symbol: `Q"\é`, Price: 3, FetchedAt: 31},
		quotehub.Quote{Symbol: "FX:USDKRW", Price: 1400, FetchedAt: 40},
		quotehub.Quote{Symbol: "FX:KRWJPY", Price: 0.107, FetchedAt: 41},
	)
	for _, base := range []string{"KRW", "USD", "XXX"} {
		sameJSON(t, Value(holdings, base, all))
	}
	sameJSON(t, Value(nil, "KRW", all))                              // no positions, no totals
	sameJSON(t, Valuation{})                                         // nil positions
	sameJSON(t, Valuation{Base: Total{Value: math.Copysign(0, -1)}}) // -0
	none := func(string) (quotehub.Quote, bool) { return quotehub.Quote{}, false }
	sameJSON(t, Value(holdings, "KRW", none))
}

// Random figures over every magnitude encode as encoding/json does.
func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.0001, 0.00015, 1e-4 + 1e-12, 123.45, 99999999999.9999, 1e11, 1e11 + 0.5, 9.999999e10, 0.30000000000000004} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, want %s", f, got, want)
		}
	}
	for range 200000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		switch r.IntN(4) {
		case 0:
			f = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(50)-25))
		case 1: // a few decimals, as prices and quantities have
			f = float64(r.Int64N(1e16)-5e15) / math.Pow(10, float64(r.IntN(9)))
		case 2: // whole, small and large
			f = float64(r.Int64N(1<<62)-1<<61) / math.Pow(10, float64(r.IntN(19)))
		}
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, want %s", f, got, want)
		}
	}
}

// FuzzAppendFloat: any finite float64 is written as encoding/json writes
// it. The seeds are the edges of the fast path (whole numbers and four
// decimals below 1e11) and of the plain notation (1e-6, 1e21).
func FuzzAppendFloat(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1, -1, 0.0001, 0.00005, 123.4567, 123.45678, 99999999999.9999, 1e11, 1e11 - 0.0001,
		1e-6, 9.99999e-7, 1e21, 1e21 - 65536, 0.30000000000000004, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53, -(1 << 62)} {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		want, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendFloat([]byte("x"), x); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("%v (%#x): got %s, want x%s", x, bits, got, want)
		}
	})
}

// A figure that is not finite is refused, as encoding/json refuses it,
// and the buffer comes back as it was.
func TestAppendJSONNotFinite(t *testing.T) {
	v := Value([]Holding{{Symbol: "A", Quantity: math.Inf(1), AvgCost: 1, Currency: "KRW"}}, "KRW",
		quotes(quotehub.Quote{Symbol: "A", Price: 1, FetchedAt: 1}))
	if _, err := json.Marshal(v); err == nil {
		t.Fatal("encoding/json took it")
	}
	got, err := v.AppendJSON([]byte("x"))
	if !errors.Is(err, ErrNotFinite) || string(got) != "x" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func BenchmarkEncodeValuation(b *testing.B) {
	var hs []Holding
	var qs []quotehub.Quote
	for i := range 50 {
		sym := "SYN-" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		hs = append(hs, Holding{Symbol: sym, Quantity: float64(i + 1), AvgCost: 90, Currency: "KRW"})
		qs = append(qs, quotehub.Quote{Symbol: sym, Price: 100 + float64(i), PrevClose: 99, FetchedAt: 1})
	}
	v := Value(hs, "KRW", quotes(qs...))
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(v)
		}
	})
	b.Run("hand", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = v.AppendJSON(buf[:0])
		}
	})
}
