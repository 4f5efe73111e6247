package quotehub_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"quotehub"
)

const allOptional = quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume

// exampleQuote is the quote object of PROTOCOL.md.
func exampleQuote() quotehub.Quote {
	return quotehub.Quote{
		Symbol:     "KRW-BTC",
		Price:      143250000,
		PrevClose:  141000000,
		Change:     2250000,
		ChangeRate: 0.015957,
		Volume:     1234.56,
		Has:        allOptional,
		Currency:   "KRW",
		TradeTime:  1763726400123,
		FetchedAt:  1763726400456,
		Seq:        42,
		Source:     "upbit",
		Market:     quotehub.MarketOpen,
	}
}

var requiredKeys = []string{"symbol", "price", "currency", "trade_time", "fetched_at", "seq", "source", "market"}

// decodeObject decodes one JSON object, keeping numbers exact.
func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

func assertKeys(t *testing.T, m map[string]any, want []string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(m))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

func assertNumber(t *testing.T, m map[string]any, key string, want float64) {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Errorf("%s = %#v, want a number", key, m[key])
		return
	}
	f, err := n.Float64()
	if err != nil || f != want {
		t.Errorf("%s = %s, want %v", key, n, want)
	}
}

func assertInt(t *testing.T, m map[string]any, key string, want int64) {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Errorf("%s = %#v, want an integer", key, m[key])
		return
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i != want {
		t.Errorf("%s = %s, want integer %d", key, n, want)
	}
}

func TestQuoteAppendJSON(t *testing.T) {
	t.Run("protocol example encodes to the documented object", func(t *testing.T) {
		q := exampleQuote()
		got := string(q.AppendJSON(nil))
		want := `{"symbol":"KRW-BTC","price":143250000,"prev_close":141000000,"change":2250000,` +
			`"change_rate":0.015957,"volume":1234.56,"currency":"KRW","trade_time":1763726400123,` +
			`"fetched_at":1763726400456,"seq":42,"source":"upbit","market":"open"}`
		if got != want {
			t.Errorf("AppendJSON =\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("all fields have the protocol names and values", func(t *testing.T) {
		q := exampleQuote()
		m := decodeObject(t, q.AppendJSON(nil))
		assertKeys(t, m, append([]string{"prev_close", "change", "change_rate", "volume"}, requiredKeys...))
		for key, want := range map[string]string{"symbol": "KRW-BTC", "currency": "KRW", "source": "upbit", "market": "open"} {
			if m[key] != want {
				t.Errorf("%s = %#v, want %q", key, m[key], want)
			}
		}
		assertNumber(t, m, "price", 143250000)
		assertNumber(t, m, "prev_close", 141000000)
		assertNumber(t, m, "change", 2250000)
		assertNumber(t, m, "change_rate", 0.015957)
		assertNumber(t, m, "volume", 1234.56)
		assertInt(t, m, "trade_time", 1763726400123)
		assertInt(t, m, "fetched_at", 1763726400456)
		assertInt(t, m, "seq", 42)
	})

	t.Run("optional fields are absent without their bit", func(t *testing.T) {
		q := exampleQuote()
		q.Has = 0
		b := q.AppendJSON(nil)
		m := decodeObject(t, b)
		assertKeys(t, m, requiredKeys)
		if bytes.Contains(b, []byte("null")) {
			t.Errorf("AppendJSON = %s, contains null", b)
		}
	})

	optional := []struct {
		key string
		bit uint8
	}{
		{"prev_close", quotehub.HasPrevClose},
		{"change", quotehub.HasChange},
		{"change_rate", quotehub.HasChangeRate},
		{"volume", quotehub.HasVolume},
	}
	for _, o := range optional {
		t.Run(o.key+" is present when its bit is set even at zero", func(t *testing.T) {
			q := exampleQuote()
			q.PrevClose, q.Change, q.ChangeRate, q.Volume = 0, 0, 0, 0
			q.Has = o.bit
			m := decodeObject(t, q.AppendJSON(nil))
			assertKeys(t, m, append([]string{o.key}, requiredKeys...))
			assertNumber(t, m, o.key, 0)
		})
	}

	t.Run("negative change and rate encode as negative numbers", func(t *testing.T) {
		q := exampleQuote()
		q.Change, q.ChangeRate = -2250000, -0.015957
		m := decodeObject(t, q.AppendJSON(nil))
		assertNumber(t, m, "change", -2250000)
		assertNumber(t, m, "change_rate", -0.015957)
	})

	t.Run("largest seq is encoded exactly", func(t *testing.T) {
		q := exampleQuote()
		q.Seq = math.MaxUint64
		m := decodeObject(t, q.AppendJSON(nil))
		if n, _ := m["seq"].(json.Number); n.String() != "18446744073709551615" {
			t.Errorf("seq = %v, want 18446744073709551615", m["seq"])
		}
	})

	t.Run("appends to the buffer it is given", func(t *testing.T) {
		q := exampleQuote()
		b := q.AppendJSON([]byte(`[`))
		b = append(b, ']')
		var qs []quotehub.Quote
		if err := json.Unmarshal(b, &qs); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if len(qs) != 1 || qs[0] != q {
			t.Errorf("decoded %+v, want [%+v]", qs, q)
		}
	})
}

func TestQuoteJSONStrings(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"double quote", `a"b`, `a"b`},
		{"backslash", `a\b\\`, `a\b\\`},
		{"newline CR and tab", "a\nb\rc\td", "a\nb\rc\td"},
		{"control characters", "\x00\x01\x08\x0c\x1f\x7f", "\x00\x01\x08\x0c\x1f\x7f"},
		{"Hangul", "삼성전자", "삼성전자"},
		{"line separators", "a\u2028b\u2029c", "a\u2028b\u2029c"},
		{"HTML", "</script><b>&", "</script><b>&"},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb\xfe", "a\ufffdb\ufffd"},
		{"truncated UTF-8 becomes U+FFFD", "x\xe3\x82", "x\ufffd\ufffd"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" gives valid JSON", func(t *testing.T) {
			q := exampleQuote()
			q.Symbol, q.Currency, q.Source, q.Market = tt.in, tt.in, tt.in, tt.in
			b := q.AppendJSON(nil)
			m := decodeObject(t, b)
			for _, key := range []string{"symbol", "currency", "source", "market"} {
				if m[key] != tt.want {
					t.Errorf("%s = %q, want %q", key, m[key], tt.want)
				}
			}

			s := quotehub.AppendJSONString([]byte("x"), tt.in)
			if s[0] != 'x' {
				t.Fatalf("AppendJSONString overwrote the buffer: %q", s)
			}
			var got string
			if err := json.Unmarshal(s[1:], &got); err != nil || got != tt.want {
				t.Errorf("AppendJSONString(%q) = %s, decodes to %q (%v), want %q", tt.in, s[1:], got, err, tt.want)
			}
		})
	}
}

func TestQuoteJSONNumbers(t *testing.T) {
	values := []struct {
		name string
		f    float64
	}{
		{"zero", 0},
		{"negative zero", math.Copysign(0, -1)},
		{"small price", 0.00012345},
		{"tiny", 1e-7},
		{"smallest denormal", 5e-324},
		{"smallest normal", 2.2250738585072014e-308},
		{"one tenth", 0.1},
		{"fractional price", 123456789.123456},
		{"large", 1e20},
		{"1e21", 1e21},
		{"huge", 1e300},
		{"largest float", math.MaxFloat64},
		{"negative huge", -1.5e250},
		{"negative tiny", -3e-9},
	}
	for _, v := range values {
		t.Run(v.name+" is an exact JSON number", func(t *testing.T) {
			q := exampleQuote()
			q.Price, q.PrevClose, q.Change, q.ChangeRate, q.Volume = v.f, v.f, v.f, v.f, v.f
			m := decodeObject(t, q.AppendJSON(nil))
			for _, key := range []string{"price", "prev_close", "change", "change_rate", "volume"} {
				assertNumber(t, m, key, v.f)
			}
		})
	}

	t.Run("non-finite values still give valid JSON", func(t *testing.T) {
		for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			q := exampleQuote()
			q.Price, q.Volume = f, f
			b := q.AppendJSON(nil)
			if !json.Valid(b) {
				t.Errorf("AppendJSON with %v = %s, invalid JSON", f, b)
			}
		}
	})
}

func TestQuoteAppendReadJSON(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stale bool
		age   int64
	}{
		{"fresh read adds stale false and age", false, 0},
		{"stale read adds stale true and age", true, 12345},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := exampleQuote()
			q.Has = quotehub.HasVolume
			m := decodeObject(t, q.AppendReadJSON(nil, tt.stale, tt.age))
			assertKeys(t, m, append([]string{"volume", "stale", "age_ms"}, requiredKeys...))
			if m["stale"] != tt.stale {
				t.Errorf("stale = %#v, want %v", m["stale"], tt.stale)
			}
			assertInt(t, m, "age_ms", tt.age)
			assertInt(t, m, "seq", 42)
			if m["symbol"] != "KRW-BTC" {
				t.Errorf("symbol = %#v, want KRW-BTC", m["symbol"])
			}
		})
	}

	t.Run("appends to the buffer it is given", func(t *testing.T) {
		q := exampleQuote()
		b := q.AppendReadJSON([]byte(`{"quote":`), true, 7)
		b = append(b, '}')
		m := decodeObject(t, b)
		inner, ok := m["quote"].(map[string]any)
		if !ok {
			t.Fatalf("quote = %#v, want an object", m["quote"])
		}
		if inner["stale"] != true || inner["symbol"] != "KRW-BTC" {
			t.Errorf("decoded %v, want stale true for KRW-BTC", inner)
		}
	})
}

// quoteWithHas is exampleQuote with only the optional fields of has, the
// others zero (as a decoder leaves them).
func quoteWithHas(has uint8) quotehub.Quote {
	q := exampleQuote()
	q.Has = has
	if has&quotehub.HasPrevClose == 0 {
		q.PrevClose = 0
	}
	if has&quotehub.HasChange == 0 {
		q.Change = 0
	}
	if has&quotehub.HasChangeRate == 0 {
		q.ChangeRate = 0
	}
	if has&quotehub.HasVolume == 0 {
		q.Volume = 0
	}
	return q
}

func TestQuoteJSONRoundTrip(t *testing.T) {
	for has := range allOptional + 1 {
		q := quoteWithHas(has)
		t.Run("AppendJSON then Unmarshal is equal with has="+strconv.Itoa(int(has)), func(t *testing.T) {
			var got quotehub.Quote
			if err := json.Unmarshal(q.AppendJSON(nil), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if got != q {
				t.Errorf("round trip = %+v, want %+v", got, q)
			}
		})
	}

	t.Run("Marshal then Unmarshal is equal", func(t *testing.T) {
		q := exampleQuote()
		q.Symbol, q.Source = "005930.KS", `sim "a\b"`
		q.Price, q.Change, q.ChangeRate = 71234.5, -0.25, -3.5096e-6
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var got quotehub.Quote
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if got != q {
			t.Errorf("round trip = %+v, want %+v", got, q)
		}
	})

	t.Run("pointer and value marshal alike", func(t *testing.T) {
		q := exampleQuote()
		a, errA := json.Marshal(q)
		b, errB := json.Marshal(&q)
		if errA != nil || errB != nil || !bytes.Equal(a, b) || !bytes.Equal(a, q.AppendJSON(nil)) {
			t.Errorf("Marshal(q) = %s, %v; Marshal(&q) = %s, %v; want both AppendJSON", a, errA, b, errB)
		}
	})

	t.Run("Unmarshal resets fields and bits of the previous value", func(t *testing.T) {
		got := exampleQuote()
		noOpt := quoteWithHas(0)
		if err := json.Unmarshal(noOpt.AppendJSON(nil), &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if got != noOpt {
			t.Errorf("Unmarshal into used quote = %+v, want %+v", got, noOpt)
		}
	})

	t.Run("explicit zero optional field sets its bit", func(t *testing.T) {
		var got quotehub.Quote
		in := `{"symbol":"AAPL","price":1,"volume":0,"currency":"USD","trade_time":1763726400123,"fetched_at":1763726400456,"seq":1,"source":"sim","market":"closed"}`
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		if got.Has != quotehub.HasVolume || got.Volume != 0 {
			t.Errorf("Has = %04b Volume = %v, want Has = %04b Volume = 0", got.Has, got.Volume, quotehub.HasVolume)
		}
	})

	t.Run("malformed JSON is an error", func(t *testing.T) {
		var got quotehub.Quote
		if err := json.Unmarshal([]byte(`{"symbol":"AAPL","price":"high"}`), &got); err == nil {
			t.Errorf("Unmarshal of a string price succeeded: %+v", got)
		}
	})
}

func TestQuoteMarshalJSONRefusesInvalid(t *testing.T) {
	for _, tt := range []struct {
		name string
		q    quotehub.Quote
	}{
		{"zero quote is refused", quotehub.Quote{}},
		{"NaN price is refused", func() quotehub.Quote { q := exampleQuote(); q.Price = math.NaN(); return q }()},
		{"seconds trade time is refused", func() quotehub.Quote { q := exampleQuote(); q.TradeTime = 1763726400; return q }()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.q.MarshalJSON(); err == nil || b != nil {
				t.Errorf("MarshalJSON = %s, %v; want nil and an error", b, err)
			}
			if b, err := json.Marshal(tt.q); err == nil {
				t.Errorf("json.Marshal = %s, want an error", b)
			}
		})
	}
}

func TestQuoteSameValue(t *testing.T) {
	t.Run("equal quotes are the same value", func(t *testing.T) {
		a, b := exampleQuote(), exampleQuote()
		if !a.SameValue(&b) {
			t.Error("SameValue = false for equal quotes")
		}
	})
	t.Run("FetchedAt and Seq are ignored", func(t *testing.T) {
		a, b := exampleQuote(), exampleQuote()
		b.FetchedAt += 60000
		b.Seq++
		if !a.SameValue(&b) || !b.SameValue(&a) {
			t.Error("SameValue = false for quotes that differ only in FetchedAt and Seq")
		}
	})

	mutations := []struct {
		field  string
		mutate func(q *quotehub.Quote)
	}{
		{"Symbol", func(q *quotehub.Quote) { q.Symbol = "KRW-ETH" }},
		{"Price", func(q *quotehub.Quote) { q.Price++ }},
		{"PrevClose", func(q *quotehub.Quote) { q.PrevClose++ }},
		{"Change", func(q *quotehub.Quote) { q.Change = -q.Change }},
		{"ChangeRate", func(q *quotehub.Quote) { q.ChangeRate += 1e-9 }},
		{"Volume", func(q *quotehub.Quote) { q.Volume += 0.01 }},
		{"Has", func(q *quotehub.Quote) { q.Has &^= quotehub.HasVolume }},
		{"Currency", func(q *quotehub.Quote) { q.Currency = "USD" }},
		{"TradeTime", func(q *quotehub.Quote) { q.TradeTime++ }},
		{"Source", func(q *quotehub.Quote) { q.Source = "sim" }},
		{"Market", func(q *quotehub.Quote) { q.Market = quotehub.MarketClosed }},
	}
	for _, m := range mutations {
		t.Run("different "+m.field+" is a different value", func(t *testing.T) {
			a, b := exampleQuote(), exampleQuote()
			m.mutate(&b)
			if a.SameValue(&b) || b.SameValue(&a) {
				t.Errorf("SameValue = true for quotes with different %s", m.field)
			}
		})
	}
}

func TestQuoteValidate(t *testing.T) {
	with := func(mutate func(q *quotehub.Quote)) quotehub.Quote {
		q := exampleQuote()
		mutate(&q)
		return q
	}
	good := []struct {
		name string
		q    quotehub.Quote
	}{
		{"protocol example is accepted", exampleQuote()},
		{"quote without optional fields is accepted", quoteWithHas(0)},
		{"closed market is accepted", with(func(q *quotehub.Quote) { q.Market = quotehub.MarketClosed })},
		{"negative change is accepted", with(func(q *quotehub.Quote) { q.Change, q.ChangeRate = -5, -0.01 })},
		{"zero volume is accepted", with(func(q *quotehub.Quote) { q.Volume = 0 })},
		{"absent zero prev_close is accepted", with(func(q *quotehub.Quote) { q.PrevClose = 0; q.Has &^= quotehub.HasPrevClose })},
		{"tiny positive price is accepted", with(func(q *quotehub.Quote) { q.Price = 1e-8 })},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.q.Validate(); err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tt.q, err)
			}
		})
	}

	bad := []struct {
		name string
		q    quotehub.Quote
	}{
		{"empty symbol is rejected", with(func(q *quotehub.Quote) { q.Symbol = "" })},
		{"zero price is rejected", with(func(q *quotehub.Quote) { q.Price = 0 })},
		{"negative price is rejected", with(func(q *quotehub.Quote) { q.Price = -1 })},
		{"NaN price is rejected", with(func(q *quotehub.Quote) { q.Price = math.NaN() })},
		{"+Inf price is rejected", with(func(q *quotehub.Quote) { q.Price = math.Inf(1) })},
		{"-Inf price is rejected", with(func(q *quotehub.Quote) { q.Price = math.Inf(-1) })},
		{"NaN prev_close is rejected", with(func(q *quotehub.Quote) { q.PrevClose = math.NaN() })},
		{"NaN change is rejected", with(func(q *quotehub.Quote) { q.Change = math.NaN() })},
		{"NaN change_rate is rejected", with(func(q *quotehub.Quote) { q.ChangeRate = math.NaN() })},
		{"NaN volume is rejected", with(func(q *quotehub.Quote) { q.Volume = math.NaN() })},
		{"infinite volume is rejected", with(func(q *quotehub.Quote) { q.Volume = math.Inf(1) })},
		{"NaN in an absent field is rejected", with(func(q *quotehub.Quote) { q.Has = 0; q.Change = math.NaN() })},
		{"zero prev_close is rejected", with(func(q *quotehub.Quote) { q.PrevClose = 0 })},
		{"negative prev_close is rejected", with(func(q *quotehub.Quote) { q.PrevClose = -141000000 })},
		{"trade time in seconds is rejected", with(func(q *quotehub.Quote) { q.TradeTime = 1763726400 })},
		{"zero trade time is rejected", with(func(q *quotehub.Quote) { q.TradeTime = 0 })},
		{"negative trade time is rejected", with(func(q *quotehub.Quote) { q.TradeTime = -1763726400123 })},
		{"trade time in microseconds is rejected", with(func(q *quotehub.Quote) { q.TradeTime = 1763726400123456 })},
		{"empty market is rejected", with(func(q *quotehub.Quote) { q.Market = "" })},
		{"upper-case market is rejected", with(func(q *quotehub.Quote) { q.Market = "OPEN" })},
		{"unknown market is rejected", with(func(q *quotehub.Quote) { q.Market = "halted" })},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error", tt.q)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Error("Validate error has no text")
			}
		})
	}
}

func TestNextSeq(t *testing.T) {
	for _, tc := range []struct {
		prev uint64
		now  int64
		want uint64
	}{
		{0, 1763726400000, 1763726400000},             // first value: wall-clock ms
		{1763726400000, 1763726400000, 1763726400001}, // two changes in one ms
		{1763726400500, 1763726400000, 1763726400501}, // a clock behind the last writer's
		{41, 0, 42}, // no clock: plain increment
		{1763726400000, 1763726401000, 1763726401000},
	} {
		if got := quotehub.NextSeq(tc.prev, tc.now); got != tc.want {
			t.Errorf("NextSeq(%d, %d) = %d, want %d", tc.prev, tc.now, got, tc.want)
		}
	}
}
