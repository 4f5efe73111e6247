package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSSE(t *testing.T) {
	t.Run("RetryErrorsSnapshotLive", func(t *testing.T) {
		n := startNode(t, nil)
		// Warm one symbol so that its snapshot exists before the stream opens.
		getJSON(t, n.url("/v1/quotes/KRW-BTC"), nil)
		s := openSSE(t, n, "?symbols=KRW-BTC,bad!,KRW-NOPE,krw-btc", nil)
		if s.resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", s.resp.StatusCode)
		}
		h := s.resp.Header
		if !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") || h.Get("Cache-Control") != "no-cache" || h.Get("X-Accel-Buffering") != "no" {
			t.Errorf("headers = %v", h)
		}
		if ev, _ := s.next(5 * time.Second); ev.retry != 3000 {
			t.Fatalf("first event = %+v, want retry: 3000", ev)
		}
		for _, want := range []struct{ sym, code string }{{"bad!", "invalid_symbol"}, {"KRW-NOPE", "unknown_symbol"}} {
			ev, _ := s.next(5 * time.Second)
			var rej map[string]string
			if ev.event != "error" || json.Unmarshal([]byte(ev.data), &rej) != nil || rej["symbol"] != want.sym || rej["code"] != want.code || rej["message"] == "" {
				t.Fatalf("event = %+v, want error for %s", ev, want.sym)
			}
		}
		var last uint64
		ids := map[string]bool{}
		for i := range 4 {
			ev, _ := s.next(5 * time.Second)
			var q struct {
				Symbol string `json:"symbol"`
				Seq    uint64 `json:"seq"`
			}
			if ev.event != "quote" || ev.id == "" || json.Unmarshal([]byte(ev.data), &q) != nil || q.Symbol != "KRW-BTC" {
				t.Fatalf("event %d = %+v", i, ev)
			}
			if i > 0 && q.Seq <= last {
				t.Errorf("seq %d after %d", q.Seq, last)
			}
			if ids[ev.id] {
				t.Errorf("id %s repeated", ev.id)
			}
			ids[ev.id] = true
			last = q.Seq
		}
		s.close()
		eventually(t, 5*time.Second, "the stream to be released", func() bool {
			return n.hub.Connections() == 0 && n.metric("quotehub_subscriptions") == 0
		})
	})

	t.Run("LastEventIDGetsFreshSnapshot", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "1h"})
		getJSON(t, n.url("/v1/quotes/KRW-ETH"), nil)
		s := openSSE(t, n, "?symbols=KRW-ETH", http.Header{"Last-Event-ID": {"42"}})
		s.next(5 * time.Second) // retry
		if ev, _ := s.next(5 * time.Second); ev.event != "quote" || !strings.Contains(ev.data, `"KRW-ETH"`) {
			t.Fatalf("after reconnect: %+v, want the snapshot", ev)
		}
	})

	t.Run("KeepaliveComment", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_REFRESH_INTERVAL": "1h", "QUOTEHUB_SSE_KEEPALIVE": "100ms"})
		s := openSSE(t, n, "?symbols=KRW-ETH", nil)
		s.next(5 * time.Second) // retry
		for {
			ev, _ := s.next(5 * time.Second)
			if ev.comment == "keepalive" {
				return
			}
			if ev.event != "quote" {
				t.Fatalf("unexpected %+v", ev)
			}
		}
	})

	t.Run("RefusedBeforeTheStreamOpens", func(t *testing.T) {
		n := startNode(t, nil)
		many := make([]string, 201)
		for i := range many {
			many[i] = "S" + strings.Repeat("X", i%30) + string(rune('A'+i%26)) + string(rune('A'+i/26))
		}
		cases := []struct {
			query  string
			status int
			code   string
		}{
			{"", 400, "bad_request"},
			{"?symbols=", 400, "bad_request"},
			{"?symbols=,,", 400, "bad_request"},
			{"?symbols=" + strings.Join(many, ","), 400, "too_many_symbols"},
			{"?symbols=bad!,NOPE", 400, "invalid_symbol"},
			{"?symbols=NOPE,ALSO-NOPE", 404, "unknown_symbol"},
		}
		for _, tc := range cases {
			var body apiError
			resp := getJSON(t, n.url("/v1/sse"+tc.query), &body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Errorf("%.60s → %d %+v, want %d %s", tc.query, resp.StatusCode, body, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%.60s: content type %s", tc.query, ct)
			}
		}
		if n.hub.Connections() != 0 {
			t.Errorf("%d connections left by refused streams", n.hub.Connections())
		}
	})
}
