package quotehub

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Market states of a quote.
const (
	MarketOpen   = "open"
	MarketClosed = "closed"
)

// Optional fields of a Quote, as bits of Quote.Has.
const (
	HasPrevClose uint8 = 1 << iota
	HasChange
	HasChangeRate
	HasVolume
)

// Quote is the latest known price of one symbol. Times are Unix milliseconds.
//
// PrevClose, Change, ChangeRate and Volume are present only when the matching
// bit of Has is set; the wire format omits them otherwise (never null).
type Quote struct {
	Symbol     string
	Price      float64
	PrevClose  float64
	Change     float64
	ChangeRate float64
	Volume     float64
	Has        uint8
	Currency   string
	TradeTime  int64
	FetchedAt  int64
	Seq        uint64
	Source     string
	Market     string
}

// NextSeq returns the seq of a changed value fetched at nowMs (Unix ms)
// whose previous seq was prev (0 for none): prev + 1, or nowMs if that is
// larger. seq is thus a hybrid logical clock: it always increases by at
// least one, and it also tracks wall time, so a writer that starts over
// without the previous value (a new node taking over, or a node that lost
// its shared cache for a while) still produces seqs above the ones already
// handed out, as long as clocks are roughly in step.
func NextSeq(prev uint64, nowMs int64) uint64 {
	if nowMs > 0 && uint64(nowMs) > prev+1 {
		return uint64(nowMs)
	}
	return prev + 1
}

// SameValue reports whether q and o carry the same value: every field but
// FetchedAt and Seq is equal. A fetch that finds the same value does not
// change Seq and is not pushed.
func (q *Quote) SameValue(o *Quote) bool {
	return q.Symbol == o.Symbol && q.Price == o.Price && q.Has == o.Has &&
		q.PrevClose == o.PrevClose && q.Change == o.Change && q.ChangeRate == o.ChangeRate &&
		q.Volume == o.Volume && q.Currency == o.Currency && q.TradeTime == o.TradeTime &&
		q.Source == o.Source && q.Market == o.Market
}

// Validate rejects a quote that must never reach a client: empty symbol,
// non-finite or non-positive price, non-finite optional fields, times that
// are not plausible Unix milliseconds, or an unknown market state.
func (q *Quote) Validate() error {
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case q.Symbol == "":
		return fmt.Errorf("quote: empty symbol")
	case !finite(q.Price) || q.Price <= 0:
		return fmt.Errorf("quote %s: price %v is not a positive number", q.Symbol, q.Price)
	case !finite(q.PrevClose) || !finite(q.Change) || !finite(q.ChangeRate) || !finite(q.Volume):
		return fmt.Errorf("quote %s: non-finite field", q.Symbol)
	case q.Has&HasPrevClose != 0 && q.PrevClose <= 0:
		return fmt.Errorf("quote %s: prev_close %v is not a positive number", q.Symbol, q.PrevClose)
	case !plausibleMillis(q.TradeTime):
		return fmt.Errorf("quote %s: trade_time %d is not Unix milliseconds", q.Symbol, q.TradeTime)
	case q.Market != MarketOpen && q.Market != MarketClosed:
		return fmt.Errorf("quote %s: market %q is neither open nor closed", q.Symbol, q.Market)
	}
	return nil
}

// plausibleMillis accepts times from 2001 to 2286 in Unix milliseconds, which
// rejects the common mistake of passing seconds.
func plausibleMillis(ms int64) bool { return ms >= 1e12 && ms < 1e13 }

// AppendJSON appends the wire form of q (the quote object of PROTOCOL.md) to
// b. It is the one encoder of quotes: the hub calls it once per update and
// sends the same bytes to every subscriber.
func (q *Quote) AppendJSON(b []byte) []byte {
	b = append(b, `{"symbol":`...)
	b = appendString(b, q.Symbol)
	b = append(b, `,"price":`...)
	b = appendFloat(b, q.Price)
	if q.Has&HasPrevClose != 0 {
		b = append(b, `,"prev_close":`...)
		b = appendFloat(b, q.PrevClose)
	}
	if q.Has&HasChange != 0 {
		b = append(b, `,"change":`...)
		b = appendFloat(b, q.Change)
	}
	if q.Has&HasChangeRate != 0 {
		b = append(b, `,"change_rate":`...)
		b = appendFloat(b, q.ChangeRate)
	}
	if q.Has&HasVolume != 0 {
		b = append(b, `,"volume":`...)
		b = appendFloat(b, q.Volume)
	}
	b = append(b, `,"currency":`...)
	b = appendString(b, q.Currency)
	b = append(b, `,"trade_time":`...)
	b = strconv.AppendInt(b, q.TradeTime, 10)
	b = append(b, `,"fetched_at":`...)
	b = strconv.AppendInt(b, q.FetchedAt, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, q.Seq, 10)
	b = append(b, `,"source":`...)
	b = appendString(b, q.Source)
	b = append(b, `,"market":`...)
	b = appendString(b, q.Market)
	return append(b, '}')
}

// AppendReadJSON appends the HTTP-read form of q: the quote object plus
// "stale" and "age_ms".
func (q *Quote) AppendReadJSON(b []byte, stale bool, ageMs int64) []byte {
	b = q.AppendJSON(b)
	b = b[:len(b)-1]
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, stale)
	b = append(b, `,"age_ms":`...)
	b = strconv.AppendInt(b, ageMs, 10)
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (q Quote) MarshalJSON() ([]byte, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q.AppendJSON(nil), nil
}

// UnmarshalJSON implements json.Unmarshaler for the wire form.
func (q *Quote) UnmarshalJSON(data []byte) error {
	var w struct {
		Symbol     string   `json:"symbol"`
		Price      float64  `json:"price"`
		PrevClose  *float64 `json:"prev_close"`
		Change     *float64 `json:"change"`
		ChangeRate *float64 `json:"change_rate"`
		Volume     *float64 `json:"volume"`
		Currency   string   `json:"currency"`
		TradeTime  int64    `json:"trade_time"`
		FetchedAt  int64    `json:"fetched_at"`
		Seq        uint64   `json:"seq"`
		Source     string   `json:"source"`
		Market     string   `json:"market"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*q = Quote{Symbol: w.Symbol, Price: w.Price, Currency: w.Currency, TradeTime: w.TradeTime,
		FetchedAt: w.FetchedAt, Seq: w.Seq, Source: w.Source, Market: w.Market}
	opt := func(p *float64, bit uint8, dst *float64) {
		if p != nil {
			*dst = *p
			q.Has |= bit
		}
	}
	opt(w.PrevClose, HasPrevClose, &q.PrevClose)
	opt(w.Change, HasChange, &q.Change)
	opt(w.ChangeRate, HasChangeRate, &q.ChangeRate)
	opt(w.Volume, HasVolume, &q.Volume)
	return nil
}

// appendFloat writes f as a JSON number without an exponent for the range
// of prices, and with one where plain notation would be absurdly long.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0') // Validate keeps these out; never emit invalid JSON
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONString appends s as a JSON string literal; exported for the
// other packages' hand-written encoders.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }
