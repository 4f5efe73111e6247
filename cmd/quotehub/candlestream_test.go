package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"quotehub/internal/poll"
)

// streamCandle is a candle frame (WebSocket) or event (SSE).
type streamCandle struct {
	Type      string  `json:"type"`
	Symbol    string  `json:"symbol"`
	Interval  string  `json:"interval"`
	T         int64   `json:"t"`
	O         float64 `json:"o"`
	H         float64 `json:"h"`
	L         float64 `json:"l"`
	C         float64 `json:"c"`
	V         float64 `json:"v"`
	Closed    bool    `json:"closed"`
	Seq       uint64  `json:"seq"`
	FetchedAt int64   `json:"fetched_at"`
}

// restCandle is a candle of GET /v1/candles.
type restCandle struct {
	T      int64   `json:"t"`
	O      float64 `json:"o"`
	H      float64 `json:"h"`
	L      float64 `json:"l"`
	C      float64 `json:"c"`
	V      float64 `json:"v"`
	Closed bool    `json:"closed"`
}

func (c streamCandle) rest() restCandle {
	return restCandle{T: c.T, O: c.O, H: c.H, L: c.L, C: c.C, V: c.V, Closed: c.Closed}
}

// newestCandle reads the newest candle of sym at iv over HTTP; ok is
// false when the read failed.
func newestCandle(t *testing.T, n *testNode, sym, iv string) (restCandle, bool) {
	t.Helper()
	var ch struct{ Candles []restCandle }
	if resp := getJSON(t, n.url("/v1/candles/"+sym+"?interval="+iv+"&count=1"), &ch); resp.StatusCode != 200 || len(ch.Candles) != 1 {
		return restCandle{}, false
	}
	return ch.Candles[0], true
}

// stillAndCompare stops the sim's quotes after a read has cached the
// newest chunks (a read of the current period then needs no upstream),
// and reports whether, within 3 s, the newest streamed candle of each
// series equals the newest candle a read returns; sync reads what the node
// sent so far and returns the newest streamed candle of an interval. It
// lets the sim run again before it returns, so a caller can retry (a
// minute may end meanwhile).
func stillAndCompare(t *testing.T, n *testNode, sym string, ivs []string, sync func(iv string) streamCandle) bool {
	t.Helper()
	for _, iv := range ivs {
		if _, ok := newestCandle(t, n, sym, iv); !ok {
			return false
		}
	}
	n.sim().SetDown(true)
	defer n.sim().SetDown(false)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		same := true
		for _, iv := range ivs {
			rc, ok := newestCandle(t, n, sym, iv)
			if got := sync(iv); !ok || got.rest() != rc {
				same = false
			}
		}
		if same {
			return true
		}
		time.Sleep(25 * time.Millisecond) // polling, as poll.Until does
	}
	return false
}

// wsCandles reads a WebSocket's frames, keeping the newest candle of each
// interval and every candle in order.
type wsCandles struct {
	c      *wsClient
	last   map[string]streamCandle
	all    []streamCandle
	pongID int
}

// until reads frames until one of type typ and returns it; candle frames
// on the way are recorded, quotes frames skipped, any other fails.
func (w *wsCandles) until(typ string) frame {
	w.c.t.Helper()
	for {
		f := w.c.must(10 * time.Second)
		switch f.Type {
		case typ:
			return f
		case "quotes":
		case "candle":
			w.note(f)
		default:
			w.c.t.Fatalf("got %s while waiting for %s: %s", f.Type, typ, short(f.raw))
		}
	}
}

// note records a candle frame.
func (w *wsCandles) note(f frame) {
	var sc streamCandle
	if err := json.Unmarshal(f.raw, &sc); err != nil {
		w.c.t.Fatalf("candle %s: %v", f.raw, err)
	}
	if prev, ok := w.last[sc.Symbol+"/"+sc.Interval]; ok && (sc.T < prev.T || sc.T == prev.T && (prev.Closed && !sc.Closed || sc.Seq < prev.Seq)) {
		w.c.t.Errorf("candle went back: %+v after %+v", sc, prev)
	}
	w.last[sc.Symbol+"/"+sc.Interval] = sc
	w.last[sc.Interval] = sc // the newest of any symbol
	w.all = append(w.all, sc)
}

// sync makes two ping round trips: every frame the node queued before
// the first ping has been read when it returns. (A batch writes its
// control frames first, so a candle queued before a ping may follow the
// pong in the same batch; it precedes the second pong.)
func (w *wsCandles) sync() {
	for range 2 {
		w.pongID++
		w.c.send(fmt.Sprintf(`{"op":"ping","id":%d}`, w.pongID))
		w.until("pong")
	}
}

// A WebSocket subscribed with candles gets the subscribed frame naming
// the intervals, the current candle of each stream, then live candles
// whose values are what GET /v1/candles answers for the newest candle;
// an unsubscribe naming an interval ends that stream only.
func TestCandleStreamWebSocket(t *testing.T) {
	n := startNode(t, nil)
	c := dialWS(t, n, "", nil)
	if w := c.next("welcome"); w.Limits["max_candle_streams"] != 400 {
		t.Errorf("welcome limits = %v, want max_candle_streams 400", w.Limits)
	}
	w := &wsCandles{c: c, last: map[string]streamCandle{}}
	c.send(`{"op":"subscribe","id":"c1","symbols":["KRW-BTC","NOPE"],"candles":["1d","1m"]}`)
	sub := w.until("subscribed")
	var ack struct {
		Candles  []string `json:"candles"`
		Rejected []struct{ Symbol, Code string }
	}
	_ = json.Unmarshal(sub.raw, &ack)
	if fmt.Sprint(sub.Symbols) != "[KRW-BTC]" || fmt.Sprint(ack.Candles) != "[1m 1d]" || len(ack.Rejected) != 1 || ack.Rejected[0].Code != "unknown_symbol" {
		t.Fatalf("subscribed = %s", sub.raw)
	}
	w.sync()
	if len(w.all) < 2 || w.all[0].Symbol != "KRW-BTC" || w.all[0].Type != "candle" {
		t.Fatalf("after the ack: %+v, want the current candle of 1m and 1d", w.all)
	}
	// Live candles, folded from the quotes the node receives.
	poll.Until(t, 10*time.Second, "live candles of both intervals", func() bool {
		w.sync()
		return w.last["1m"].Seq > 0 && w.last["1d"].Seq > 0 && w.last["1m"].FetchedAt > 0
	})
	// With the upstream still, the newest frame of each interval is what a
	// read answers (retried across a minute's end).
	poll.Until(t, 20*time.Second, "the newest frames to equal GET /v1/candles", func() bool {
		return stillAndCompare(t, n, "KRW-BTC", []string{"1m", "1d"}, func(iv string) streamCandle { w.sync(); return w.last[iv] })
	})

	c.send(`{"op":"unsubscribe","id":"u1","symbols":["KRW-BTC"],"candles":["1m"]}`)
	if f := w.until("unsubscribed"); !strings.Contains(string(f.raw), `"candles":["1m"]`) {
		t.Fatalf("unsubscribed = %s", f.raw)
	}
	seen, day := len(w.all), w.last["1d"].Seq
	poll.Until(t, 10*time.Second, "a newer 1d candle", func() bool { w.sync(); return w.last["1d"].Seq > day })
	for _, sc := range w.all[seen:] {
		if sc.Interval == "1m" {
			t.Fatalf("a 1m candle after its unsubscribe: %+v", sc)
		}
	}
	if n.hub.WatchedSeries() != 1 {
		t.Errorf("watched series = %d, want 1", n.hub.WatchedSeries())
	}

	// Bad intervals, and symbols subscribed with candles at connect.
	c.send(`{"op":"subscribe","id":"e1","symbols":["KRW-BTC"],"candles":["1m","2m"]}`)
	if f := w.until("error"); f.Code != "bad_request" || !strings.Contains(f.Message, `"2m"`) || string(f.ID) != `"e1"` {
		t.Errorf("bad interval → %s", f.raw)
	}
	c2 := dialWS(t, n, "?symbols=KRW-ETH&candles=1h", nil)
	w2 := &wsCandles{c: c2, last: map[string]streamCandle{}}
	w2.until("welcome")
	if f := w2.until("subscribed"); !strings.Contains(string(f.raw), `"candles":["1h"]`) {
		t.Errorf("subscribe at connect = %s", f.raw)
	}
	poll.Until(t, 10*time.Second, "a 1h candle of KRW-ETH", func() bool { w2.sync(); return w2.last["1h"].Symbol == "KRW-ETH" })
}

// The same over SSE: &candles= beside symbols=, event: candle.
func TestCandleStreamSSE(t *testing.T) {
	n := startNode(t, map[string]string{"QUOTEHUB_MAX_CANDLE_STREAMS": "3"})
	for _, tc := range []struct {
		query, code, mention string
		status               int
	}{
		{"?symbols=KRW-BTC&candles=1m,2m", "bad_request", `"2m"`, 400},
		{"?symbols=KRW-BTC&candles=", "bad_request", "candles", 400},
		{"?symbols=KRW-BTC,KRW-ETH&candles=1m,1d", "too_many_symbols", "candle streams", 400},
		{"?symbols=NOPE&candles=1m", "unknown_symbol", "NOPE", 404},
	} {
		s := openSSE(t, n, tc.query, nil)
		var e apiError
		_ = decodeBody(s.resp, &e)
		if s.resp.StatusCode != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.mention) {
			t.Errorf("%s → %d %+v, want %d %s", tc.query, s.resp.StatusCode, e, tc.status, tc.code)
		}
	}

	s := openSSE(t, n, "?symbols=KRW-BTC,NOPE&candles=1m", nil)
	if s.resp.StatusCode != 200 {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	var last streamCandle
	var events []string
	read := func() {
		ev, ok := s.next(10 * time.Second)
		if !ok {
			t.Fatal("stream ended")
		}
		events = append(events, ev.event)
		if ev.event == "candle" {
			var sc streamCandle
			if err := json.Unmarshal([]byte(ev.data), &sc); err != nil {
				t.Fatalf("candle %s: %v", ev.data, err)
			}
			if sc.Symbol != "KRW-BTC" || sc.Interval != "1m" || sc.T < last.T {
				t.Fatalf("candle %s after %+v", ev.data, last)
			}
			last = sc
		}
	}
	for last.Seq == 0 {
		read()
	}
	if i := slices.Index(events, "error"); i < 0 || i > slices.Index(events, "candle") {
		t.Errorf("events = %v, want the rejection of NOPE first, then candles", events)
	}
	poll.Until(t, 20*time.Second, "the newest candle event to equal GET /v1/candles", func() bool {
		return stillAndCompare(t, n, "KRW-BTC", []string{"1m"}, func(string) streamCandle {
			for len(s.events) > 0 {
				read()
			}
			return last
		})
	})
}

// Connections that subscribe to candles and go leave nothing behind: no
// watched series, no connection, no goroutine (TestMain checks).
func TestCandleStreamChurn(t *testing.T) {
	n := startNode(t, nil)
	var open []*wsClient
	for i := range 20 {
		c := dialWS(t, n, "", nil)
		w := &wsCandles{c: c, last: map[string]streamCandle{}}
		w.until("welcome")
		c.send(`{"op":"subscribe","symbols":["KRW-BTC","KRW-ETH","AAPL"],"candles":["1m","5m","1d"]}`)
		w.until("subscribed")
		if i%2 == 0 {
			c.send(`{"op":"unsubscribe","symbols":["KRW-ETH"],"candles":["5m"]}`)
			w.until("unsubscribed")
		}
		open = append(open, c)
	}
	if got := n.hub.WatchedSeries(); got != 9 {
		t.Errorf("watched series = %d, want 9", got)
	}
	for _, c := range open {
		c.conn.CloseNow()
	}
	poll.Until(t, 10*time.Second, "every connection and series gone", func() bool {
		return n.hub.Connections() == 0 && n.hub.WatchedSeries() == 0
	})
}

// At a minute's end a subscriber gets that minute's final candle, then the
// next minute's: over a real socket, with the node's own clock (so the
// test waits for the next minute; the hub's and history's tests cover the
// roll with a fake clock, and a paused reader).
func TestCandleStreamRoll(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a minute's end")
	}
	n := startNode(t, nil)
	c := dialWS(t, n, "?symbols=KRW-BTC&candles=1m", nil)
	w := &wsCandles{c: c, last: map[string]streamCandle{}}
	w.until("welcome")
	w.until("subscribed")
	deadline := time.Now().Add(75 * time.Second)
	final := -1
	for final < 0 || len(w.all) <= final+1 {
		f, err := c.read(time.Until(deadline))
		if err != nil {
			t.Fatalf("no final candle and a next one within 75 s (%v): %d candles, the last %+v", err, len(w.all), w.all[max(0, len(w.all)-3):])
		}
		if f.Type != "candle" {
			continue
		}
		w.note(f)
		if final < 0 && w.all[len(w.all)-1].Closed {
			final = len(w.all) - 1
		}
	}
	fin, next := w.all[final], w.all[final+1]
	if final == 0 || w.all[final-1].T != fin.T || w.all[final-1].Closed {
		t.Errorf("the final candle %+v does not follow an open one of its minute: %+v", fin, w.all[:final])
	}
	if next.T != fin.T+60_000 || next.Closed {
		t.Errorf("after the final candle %+v came %+v, want the next minute's, open", fin, next)
	}
	if fin.H < w.all[final-1].H || fin.L > w.all[final-1].L || fin.O != w.all[final-1].O {
		t.Errorf("the final candle %+v lost what the open one %+v had", fin, w.all[final-1])
	}
}
