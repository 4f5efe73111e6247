package alert

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

// run feeds prices (prevClose 100) and returns, per price, the fired rule
// ids with their direction ("3up").
func run(t *testing.T, e *Engine, sym string, prices ...float64) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range prices {
		var got []string
		for _, f := range e.Evaluate(sym, p, 100, t0) {
			got = append(got, fmt.Sprintf("%d%s", f.Rule.ID, f.Direction))
		}
		slices.Sort(got)
		out = append(out, got)
	}
	return out
}

func put(t *testing.T, e *Engine, rules ...Rule) {
	t.Helper()
	for _, r := range rules {
		if err := e.Put(r); err != nil {
			t.Fatalf("Put(%+v): %v", r, err)
		}
	}
}

func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   Rule
		prices []float64
		want   [][]string // fired per price
	}{
		{"above fires once, hovers, re-arms below the band",
			Rule{ID: 1, Kind: Above, Threshold: 100, Rearm: 0.01},
			[]float64{99, 100, 100.5, 99.5, 100.2, 98.9, 99.5, 101},
			[][]string{nil, {"1up"}, nil, nil, nil, nil, nil, {"1up"}}},
		{"below fires once, hovers, re-arms above the band",
			Rule{ID: 2, Kind: Below, Threshold: 100, Rearm: 0.02},
			[]float64{101, 99, 99.9, 101.9, 100, 102, 100},
			[][]string{nil, {"2down"}, nil, nil, nil, nil, {"2down"}}},
		{"an above rule whose condition holds when added fires with the next price",
			Rule{ID: 3, Kind: Above, Threshold: 50},
			[]float64{60, 61},
			[][]string{{"3up"}, nil}},
		{"cross: the first price sets the side, then each way beyond the band",
			Rule{ID: 4, Kind: Cross, Threshold: 100, Rearm: 0.01},
			[]float64{98, 100, 99.5, 100.5, 99.1, 99, 100, 100.9, 101, 101},
			[][]string{nil, {"4up"}, nil, nil, nil, {"4down"}, nil, nil, {"4up"}, nil}},
		{"cross starting above",
			Rule{ID: 5, Kind: Cross, Threshold: 100, Rearm: 0.01},
			[]float64{120, 100, 100.9, 101},
			[][]string{nil, {"5down"}, nil, {"5up"}}},
		{"move up 5 % from the previous close (100)",
			Rule{ID: 6, Kind: Move, Threshold: 5, Rearm: 0.1},
			[]float64{104.9, 105, 104.6, 104.5, 105.1},
			[][]string{nil, {"6up"}, nil, nil, {"6up"}}},
		{"move down 5 %",
			Rule{ID: 7, Kind: Move, Threshold: -5, Rearm: 0.1},
			[]float64{96, 95, 95.4, 95.6, 94},
			[][]string{nil, {"7down"}, nil, nil, {"7down"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New()
			tc.rule.Symbol = "KRW-BTC"
			put(t, e, tc.rule)
			if got := run(t, e, "KRW-BTC", tc.prices...); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("prices %v fired %q, want %q", tc.prices, got, tc.want)
			}
		})
	}
}

func TestFiredCarriesTheContext(t *testing.T) {
	e := New()
	put(t, e, Rule{ID: 9, User: "alice", Symbol: "AAPL", Kind: Move, Threshold: 2})
	f := e.Evaluate("AAPL", 103, 100, t0)
	if len(f) != 1 || f[0].Rule.User != "alice" || f[0].Price != 103 || f[0].PrevClose != 100 || !f[0].At.Equal(t0) ||
		f[0].Rule.Rearm != DefaultRearm {
		t.Fatalf("fired %+v", f)
	}
	if f := e.Evaluate("AAPL", 110, 0, t0); len(f) != 0 {
		t.Errorf("a move rule fired without a previous close: %+v", f)
	}
	if f := e.Evaluate("MSFT", 1e9, 1, t0); f != nil {
		t.Errorf("a symbol without rules fired %+v", f)
	}
}

func TestPutReplacesAndRemoveForgets(t *testing.T) {
	e := New()
	put(t, e, Rule{ID: 1, Symbol: "A", Kind: Above, Threshold: 10}, Rule{ID: 2, Symbol: "A", Kind: Below, Threshold: 5})
	put(t, e, Rule{ID: 1, Symbol: "B", Kind: Above, Threshold: 20}) // moved to another symbol
	if got := run(t, e, "A", 11, 4); !slices.EqualFunc(got, [][]string{nil, {"2down"}}, slices.Equal) {
		t.Errorf("A fired %q", got)
	}
	if got := run(t, e, "B", 21); !slices.EqualFunc(got, [][]string{{"1up"}}, slices.Equal) {
		t.Errorf("B fired %q", got)
	}
	e.Remove(2)
	e.Remove(2)  // twice: nothing
	e.Remove(99) // unknown: nothing
	if got := e.Symbols(); !slices.Equal(got, []string{"B"}) || e.Len() != 1 {
		t.Errorf("symbols %v, %d rules; want [B] and 1", got, e.Len())
	}
	e.Remove(1)
	if e.Len() != 0 || len(e.Symbols()) != 0 {
		t.Errorf("%d rules and symbols %v left", e.Len(), e.Symbols())
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []Rule{
		{Kind: Above, Threshold: 1},
		{Symbol: "A", Kind: "sideways", Threshold: 1},
		{Symbol: "A", Kind: Above, Threshold: 0},
		{Symbol: "A", Kind: Below, Threshold: -3},
		{Symbol: "A", Kind: Above, Threshold: math.NaN()},
		{Symbol: "A", Kind: Cross, Threshold: math.Inf(1)},
		{Symbol: "A", Kind: Move, Threshold: 0},
		{Symbol: "A", Kind: Move, Threshold: 5000},
		{Symbol: "A", Kind: Above, Threshold: 1, Rearm: -0.1},
		{Symbol: "A", Kind: Above, Threshold: 1, Rearm: 0.9},
	} {
		if err := New().Put(r); err == nil {
			t.Errorf("Put(%+v) accepted", r)
		}
	}
}

// A node that takes a symbol over seeds its rules from the last price, so
// what the previous owner fired does not fire again.
func TestSeed(t *testing.T) {
	e := New()
	put(t, e, Rule{ID: 1, Symbol: "A", Kind: Above, Threshold: 100}, Rule{ID: 2, Symbol: "A", Kind: Above, Threshold: 200})
	e.Seed("A", 150, 100)
	if got := run(t, e, "A", 151, 201, 90, 101); !slices.EqualFunc(got, [][]string{nil, {"2up"}, nil, {"1up"}}, slices.Equal) {
		t.Errorf("after Seed(150) fired %q", got)
	}
}

// model is the straightforward per-rule state machine the engine must
// agree with: each rule checked on every price.
type model struct {
	r       Rule
	armed   bool
	side    int // cross: 0 unseen, +1 above (watching down), -1 below
	trigger float64
}

func (m *model) step(x float64) string {
	band := math.Abs(m.r.Threshold) * m.r.Rearm
	T := m.r.Threshold
	switch m.r.Kind {
	case Above, Move:
		up := m.r.Kind == Above || T > 0
		if up {
			if !m.armed && x <= T-band {
				m.armed = true
			}
			if m.armed && x >= T {
				m.armed = false
				return "up"
			}
		} else {
			if !m.armed && x >= T+band {
				m.armed = true
			}
			if m.armed && x <= T {
				m.armed = false
				return "down"
			}
		}
	case Below:
		if !m.armed && x >= T+band {
			m.armed = true
		}
		if m.armed && x <= T {
			m.armed = false
			return "down"
		}
	case Cross:
		switch {
		case m.side == 0 && x >= T:
			m.side, m.trigger = 1, T
		case m.side == 0:
			m.side, m.trigger = -1, T
		case m.side == -1 && x >= m.trigger:
			m.side, m.trigger = 1, T-band
			return "up"
		case m.side == 1 && x <= m.trigger:
			m.side, m.trigger = -1, T+band
			return "down"
		}
	}
	return ""
}

// TestAgreesWithThePerRuleModel: thousands of random rules on a random
// walk fire exactly what checking every rule on every price fires.
func TestAgreesWithThePerRuleModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := New()
	var models []*model
	kinds := []Kind{Above, Below, Cross, Move}
	for id := range 3000 {
		r := Rule{ID: int64(id), Symbol: "S", Kind: kinds[rng.IntN(4)], Rearm: rng.Float64() * 0.05}
		if r.Kind == Move {
			r.Threshold = float64(rng.IntN(21) - 10)
			if r.Threshold == 0 {
				r.Threshold = 1
			}
		} else {
			r.Threshold = 80 + rng.Float64()*40
		}
		put(t, e, r)
		if r.Rearm == 0 {
			r.Rearm = DefaultRearm
		}
		models = append(models, &model{r: r, armed: true})
	}
	price, fires := 100.0, 0
	for step := range 5000 {
		price = max(50, min(150, price+rng.NormFloat64()))
		want := map[int64]string{}
		for _, m := range models {
			x := price
			if m.r.Kind == Move {
				x = (price/100 - 1) * 100
			}
			if d := m.step(x); d != "" {
				want[m.r.ID] = d
			}
		}
		got := map[int64]string{}
		for _, f := range e.Evaluate("S", price, 100, t0) {
			if _, dup := got[f.Rule.ID]; dup {
				t.Fatalf("step %d: rule %d fired twice", step, f.Rule.ID)
			}
			got[f.Rule.ID] = f.Direction
		}
		if len(got) != len(want) {
			t.Fatalf("step %d (price %.3f): fired %d rules, the model %d", step, price, len(got), len(want))
		}
		for id, d := range want {
			if got[id] != d {
				t.Fatalf("step %d (price %.3f): rule %d (%+v) fired %q, the model %q", step, price, id, models[id].r, got[id], d)
			}
		}
		fires += len(got)
	}
	if fires < 1000 {
		t.Fatalf("only %d fires: the walk did not exercise the rules", fires)
	}
	t.Logf("%d fires over 5,000 prices and 3,000 rules", fires)
}
