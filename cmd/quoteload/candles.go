package main

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Candle streams (-candles 1m,1d, ws mode): every connection subscribes at
// connect to a candle stream per symbol and interval beside its quotes,
// and the report gives the age of the candle frames that arrive in the
// measured window: receive time − fetched_at, the fetched_at of the newest
// quote folded into the candle (a frame without one, the upstream's view
// alone, is counted but has no age). Quote figures are reported as
// without -candles.

var candleHead = []byte(`{"type":"candle",`)

// checkCandles validates -candles: a comma-separated list of intervals,
// ws mode only. The server checks the intervals themselves (an unknown
// one is an error frame, counted).
func (cfg *Config) checkCandles() error {
	if cfg.Candles == "" {
		return nil
	}
	if cfg.Mode != "ws" {
		return fmt.Errorf("-candles works in ws mode only")
	}
	for _, iv := range strings.Split(cfg.Candles, ",") {
		if strings.TrimSpace(iv) == "" {
			return fmt.Errorf("-candles %q: an empty interval", cfg.Candles)
		}
	}
	return nil
}

// streamQuery is the query of a WebSocket that subscribes to syms at
// connect, with the candle streams of -candles.
func (r *runner) streamQuery(syms []string) string {
	q := "symbols=" + url.QueryEscape(strings.Join(syms, ","))
	if r.cfg.Candles != "" {
		q += "&candles=" + url.QueryEscape(r.cfg.Candles)
	}
	return q
}

// candleStats are one connection's candle figures.
type candleStats struct {
	frames    uint64 // in the measured window
	closed    uint64 // of which final candles
	unstamped uint64 // without fetched_at (no quote folded in yet)
	age       Hist   // µs
}

// recordCandle accounts one candle frame received at nowUs (Unix µs).
func (s *connStats) recordCandle(b []byte, nowUs int64, measuring bool) {
	if !measuring {
		return
	}
	c := &s.candles
	c.frames++
	if bytes.Contains(b, []byte(`"closed":true`)) {
		c.closed++
	}
	at := candleField(b, `"fetched_at":`)
	if at <= 0 {
		c.unstamped++
		return
	}
	c.age.Record(nowUs - at*1000)
}

// candleField reads the integer field named by key ("name":) of b; -1 when
// it is missing.
func candleField(b []byte, key string) int64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return -1
	}
	b = b[i+len(key):]
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// CandleFigures are the candle frames of a -candles run.
type CandleFigures struct {
	Intervals string   `json:"intervals"`
	Frames    uint64   `json:"frames"`
	Closed    uint64   `json:"closed"`
	NoQuote   uint64   `json:"without_fetched_at"`
	Age       *Summary `json:"age_ms"`
}

// addCandles merges the candle figures of the connections that ended.
func (rep *Report) addCandles(cfg Config, conns []*conn, launched int) {
	if cfg.Candles == "" {
		return
	}
	f := &CandleFigures{Intervals: cfg.Candles}
	var age Hist
	for i, c := range conns {
		if i >= launched {
			continue
		}
		select {
		case <-c.done:
		default:
			continue
		}
		cs := &c.st.candles
		f.Frames += cs.frames
		f.Closed += cs.closed
		f.NoQuote += cs.unstamped
		age.Merge(&cs.age)
	}
	f.Age = summarize(&age)
	rep.Candles = f
}

// writeCandlesText prints the candle figures, if any.
func (rep *Report) writeCandlesText(row func(k, format string, args ...any)) {
	f := rep.Candles
	if f == nil {
		return
	}
	row("candle frames", "%d  (%s; %d final, %d without a quote folded in)", f.Frames, f.Intervals, f.Closed, f.NoQuote)
	if a := f.Age; a != nil && a.Count > 0 {
		row("candle age ms", "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (receive time - fetched_at of the newest quote folded in, n=%d)", a.P50, a.P90, a.P99, a.P999, a.Max, a.Count)
	}
}
