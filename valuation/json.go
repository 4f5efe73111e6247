package valuation

import (
	"errors"
	"math"
	"slices"
	"strconv"

	"quotehub"
)

// The valuation is encoded by hand, as quotes are: on the path of every
// valued read and of every portfolio frame, encoding/json's reflection
// cost more than valuing the positions. The output is what json.Marshal
// gives for the same value (the tests hold it to that), except that
// strings are not HTML-escaped.

// ErrNotFinite is returned for a valuation with a figure that is NaN or
// infinite (an absurd quantity): JSON cannot carry it.
var ErrNotFinite = errors.New("a figure of the valuation is not a finite number")

// AppendFields appends the valuation's fields, without the braces around
// them (so that a frame can put its own fields first): positions, totals,
// total, fx, unconverted, unpriced, as_of.
func (v *Valuation) AppendFields(b []byte) ([]byte, error) {
	e := encoder{b: b}
	e.raw(`"positions":`)
	if v.Positions == nil {
		e.raw("null")
	} else {
		e.raw("[")
		for i := range v.Positions {
			if i > 0 {
				e.raw(",")
			}
			e.position(&v.Positions[i])
		}
		e.raw("]")
	}
	e.raw(`,"totals":`)
	if v.Totals == nil {
		e.raw("null")
	} else {
		e.raw("[")
		for i := range v.Totals {
			if i > 0 {
				e.raw(",")
			}
			e.total(&v.Totals[i])
		}
		e.raw("]")
	}
	e.raw(`,"total":`)
	e.total(&v.Base)
	if len(v.FX) > 0 {
		e.raw(`,"fx":{`)
		keys := make([]string, 0, len(v.FX))
		for k := range v.FX {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				e.raw(",")
			}
			e.str(k)
			e.raw(":")
			e.num(v.FX[k])
		}
		e.raw("}")
	}
	if len(v.Unconverted) > 0 {
		e.raw(`,"unconverted":`)
		e.strs(v.Unconverted)
	}
	if len(v.Unpriced) > 0 {
		e.raw(`,"unpriced":`)
		e.strs(v.Unpriced)
	}
	e.raw(`,"as_of":`)
	e.b = strconv.AppendInt(e.b, v.AsOf, 10)
	if e.bad {
		return b, ErrNotFinite
	}
	return e.b, nil
}

// AppendJSON appends the valuation as a JSON object.
func (v *Valuation) AppendJSON(b []byte) ([]byte, error) {
	out, err := v.AppendFields(append(b, '{'))
	if err != nil {
		return b, err
	}
	return append(out, '}'), nil
}

// encoder appends JSON, noting a figure that is not finite.
type encoder struct {
	b   []byte
	bad bool
}

func (e *encoder) raw(s string) { e.b = append(e.b, s...) }

func (e *encoder) str(s string) { e.b = quotehub.AppendJSONString(e.b, s) }

func (e *encoder) strs(ss []string) {
	e.raw("[")
	for i, s := range ss {
		if i > 0 {
			e.raw(",")
		}
		e.str(s)
	}
	e.raw("]")
}

// num appends f as encoding/json does: plain notation from 1e-6 to 1e21,
// else an exponent without a leading zero.
func (e *encoder) num(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.bad = true
		e.b = append(e.b, '0')
		return
	}
	e.b = AppendFloat(e.b, f)
}

// AppendFloat appends a finite f exactly as encoding/json writes a
// float64.
func AppendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	// Most figures are whole or have a few decimals (prices, quantities,
	// costs): written from an integer, they cost a fraction of the
	// shortest-representation search. k/10⁴ is then the shortest decimal
	// that reads back as f: below 1e11 two doubles are less than 1e-4
	// apart, so no other decimal of at most 4 places lies between them.
	if abs < 1e11 && !(f == 0 && math.Signbit(f)) {
		if k := f * 1e4; k == math.Trunc(k) && k/1e4 == f {
			return appendScaled(b, int64(k))
		}
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func (e *encoder) field(name string, f float64) {
	e.raw(`,"`)
	e.raw(name)
	e.raw(`":`)
	e.num(f)
}

func (e *encoder) position(p *Position) {
	e.raw(`{"symbol":`)
	e.str(p.Symbol)
	e.field("quantity", p.Quantity)
	e.field("avg_cost", p.AvgCost)
	e.raw(`,"currency":`)
	e.str(p.Currency)
	if p.Priced {
		e.raw(`,"priced":true`)
	} else {
		e.raw(`,"priced":false`)
	}
	e.field("price", p.Price)
	e.field("value", p.Value)
	e.field("cost", p.Cost)
	e.field("pnl", p.PnL)
	e.field("pnl_rate", p.PnLRate)
	e.field("day_change", p.DayChange)
	e.field("day_change_rate", p.DayChangeRate)
	if p.Market != "" {
		e.raw(`,"market":`)
		e.str(p.Market)
	}
	e.raw("}")
}

func (e *encoder) total(t *Total) {
	e.raw(`{"currency":`)
	e.str(t.Currency)
	e.field("value", t.Value)
	e.field("cost", t.Cost)
	e.field("pnl", t.PnL)
	e.field("pnl_rate", t.PnLRate)
	e.field("day_change", t.DayChange)
	e.field("day_change_rate", t.DayChangeRate)
	e.raw("}")
}

// appendScaled appends k/10⁴ in plain notation, without trailing zeros.
func appendScaled(b []byte, k int64) []byte {
	if k < 0 {
		b = append(b, '-')
		k = -k
	}
	b = strconv.AppendInt(b, k/10000, 10)
	frac := k % 10000
	if frac == 0 {
		return b
	}
	var d [5]byte
	d[0] = '.'
	for i := 4; i >= 1; i-- {
		d[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 5
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}
