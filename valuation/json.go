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
	if !v.finite() {
		return b, ErrNotFinite
	}
	// Every helper takes the buffer and returns it, rather than keeping it
	// in a struct they share: a buffer kept in memory the compiler cannot
	// prove is the stack's costs a write barrier on every append while
	// the collector runs.
	b = append(b, `"positions":`...)
	b = appendArray(b, v.Positions, appendPosition)
	b = append(b, `,"totals":`...)
	b = appendArray(b, v.Totals, appendTotal)
	b = append(b, `,"total":`...)
	b = appendTotal(b, &v.Base)
	if len(v.FX) > 0 {
		b = append(b, `,"fx":{`...)
		keys := make([]string, 0, len(v.FX))
		for k := range v.FX {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = quotehub.AppendJSONString(b, k)
			b = append(b, ':')
			b = AppendFloat(b, v.FX[k])
		}
		b = append(b, '}')
	}
	if len(v.Unconverted) > 0 {
		b = append(b, `,"unconverted":`...)
		b = appendStrings(b, v.Unconverted)
	}
	if len(v.Unpriced) > 0 {
		b = append(b, `,"unpriced":`...)
		b = appendStrings(b, v.Unpriced)
	}
	b = append(b, `,"as_of":`...)
	return strconv.AppendInt(b, v.AsOf, 10), nil
}

// AppendJSON appends the valuation as a JSON object.
func (v *Valuation) AppendJSON(b []byte) ([]byte, error) {
	out, err := v.AppendFields(append(b, '{'))
	if err != nil {
		return b, err
	}
	return append(out, '}'), nil
}

// finite reports whether every figure the encoding carries is a finite
// number: checked before encoding, so that a refusal costs no encoding
// and the encoders need not watch for it.
func (v *Valuation) finite() bool {
	for i := range v.Positions {
		p := &v.Positions[i]
		if !allFinite(p.Quantity, p.AvgCost, p.Price, p.Value, p.Cost, p.PnL, p.PnLRate, p.DayChange, p.DayChangeRate) {
			return false
		}
	}
	for i := range v.Totals {
		if !v.Totals[i].finite() {
			return false
		}
	}
	if !v.Base.finite() {
		return false
	}
	for _, r := range v.FX {
		if !allFinite(r) {
			return false
		}
	}
	return true
}

func (t *Total) finite() bool {
	return allFinite(t.Value, t.Cost, t.PnL, t.PnLRate, t.DayChange, t.DayChangeRate)
}

func allFinite(fs ...float64) bool {
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

// appendArray appends xs as a JSON array of the objects each appends, or
// null for a nil slice, as encoding/json does.
func appendArray[T any](b []byte, xs []T, each func([]byte, *T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(b, &xs[i])
	}
	return append(b, ']')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = quotehub.AppendJSONString(b, s)
	}
	return append(b, ']')
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

func appendPosition(b []byte, p *Position) []byte {
	b = append(b, `{"symbol":`...)
	b = quotehub.AppendJSONString(b, p.Symbol)
	b = append(b, `,"quantity":`...)
	b = AppendFloat(b, p.Quantity)
	b = append(b, `,"avg_cost":`...)
	b = AppendFloat(b, p.AvgCost)
	b = append(b, `,"currency":`...)
	b = quotehub.AppendJSONString(b, p.Currency)
	if p.Priced {
		b = append(b, `,"priced":true,"price":`...)
	} else {
		b = append(b, `,"priced":false,"price":`...)
	}
	b = AppendFloat(b, p.Price)
	b = append(b, `,"value":`...)
	b = AppendFloat(b, p.Value)
	b = append(b, `,"cost":`...)
	b = AppendFloat(b, p.Cost)
	b = append(b, `,"pnl":`...)
	b = AppendFloat(b, p.PnL)
	b = append(b, `,"pnl_rate":`...)
	b = AppendFloat(b, p.PnLRate)
	b = append(b, `,"day_change":`...)
	b = AppendFloat(b, p.DayChange)
	b = append(b, `,"day_change_rate":`...)
	b = AppendFloat(b, p.DayChangeRate)
	if p.Market != "" {
		b = append(b, `,"market":`...)
		b = quotehub.AppendJSONString(b, p.Market)
	}
	return append(b, '}')
}

func appendTotal(b []byte, t *Total) []byte {
	b = append(b, `{"currency":`...)
	b = quotehub.AppendJSONString(b, t.Currency)
	b = append(b, `,"value":`...)
	b = AppendFloat(b, t.Value)
	b = append(b, `,"cost":`...)
	b = AppendFloat(b, t.Cost)
	b = append(b, `,"pnl":`...)
	b = AppendFloat(b, t.PnL)
	b = append(b, `,"pnl_rate":`...)
	b = AppendFloat(b, t.PnLRate)
	b = append(b, `,"day_change":`...)
	b = AppendFloat(b, t.DayChange)
	b = append(b, `,"day_change_rate":`...)
	b = AppendFloat(b, t.DayChangeRate)
	return append(b, '}')
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
