package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"quotehub/internal/sockopt"
	"strconv"
	"strings"
	"testing"
	"time"

	"quotehub/internal/poll"
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
		poll.Until(t, 5*time.Second, "the stream to be released", func() bool {
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

	t.Run("CrossOriginHeadersOnTheHijackedStream", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_ALLOWED_ORIGINS": "https://app.example.com"})
		s := openSSE(t, n, "?symbols=KRW-BTC", http.Header{"Origin": {"https://app.example.com"}})
		h := s.resp.Header
		if h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(h.Get("Vary"), "Origin") || h.Get("X-Request-Id") == "" {
			t.Errorf("headers = %v, want the CORS grant, Vary: Origin and a request id", h)
		}
		if !s.resp.Close || s.resp.TransferEncoding != nil {
			t.Errorf("close-delimited %v, transfer encoding %v: want a body that ends at close", s.resp.Close, s.resp.TransferEncoding)
		}
		if ev, _ := s.next(5 * time.Second); ev.retry != 3000 {
			t.Fatalf("first event = %+v, want retry: 3000", ev)
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

// openSlowSSE opens a stream of the first k synthetic symbols over a
// connection with a small receive buffer, so the server's socket fills
// quickly when the test does not read. Nothing reads it until the test does.
func openSlowSSE(t *testing.T, n *testNode, k int) *bufio.Reader {
	t.Helper()
	var syms []string
	for i := range k {
		syms = append(syms, fmt.Sprintf("SYN-%06d", i+1))
	}
	tr := &http.Transport{DialContext: (&net.Dialer{Control: sockopt.RcvBuf(4096)}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get(n.url("/v1/sse?symbols=" + strings.Join(syms, ",")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Fatalf("status %d, close-delimited %v", resp.StatusCode, resp.Close)
	}
	return bufio.NewReader(resp.Body)
}

// TestSSESlowConsumer: a stream that is not read fills its socket; the
// writer pool hands it to a goroutine of its own, it conflates, and it is
// closed after the slow-consumer timeout. One that pauses gets well-formed
// events afterwards, and converges.
func TestSSESlowConsumer(t *testing.T) {
	t.Run("Dropped", func(t *testing.T) {
		n := startNode(t, map[string]string{
			"QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_REFRESH_INTERVAL": "10ms", "QUOTEHUB_SLOW_CONSUMER_TIMEOUT": "500ms",
		})
		openSlowSSE(t, n, 200) // and never read
		poll.Until(t, 20*time.Second, "the slow stream to be closed", func() bool {
			return n.metric("quotehub_slow_consumer_disconnects_total") == 1 && n.hub.Connections() == 0
		})
		if got := n.metric("quotehub_closes_total", "transport", "sse", "code", "4000"); got != 1 {
			t.Errorf("quotehub_closes_total{sse,4000} = %v, want 1", got)
		}
	})

	t.Run("PausesAndConverges", func(t *testing.T) {
		n := startNode(t, map[string]string{"QUOTEHUB_SIM_SYMBOLS": "200", "QUOTEHUB_REFRESH_INTERVAL": "10ms"})
		r := openSlowSSE(t, n, 200)
		last := map[string]uint64{}
		var lastID uint64
		readFor := func(d time.Duration) {
			t.Helper()
			var event, id, data string
			for end := time.Now().Add(d); time.Now().Before(end); {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				line = strings.TrimSuffix(line, "\n")
				k, v, _ := strings.Cut(line, ": ")
				switch {
				case line == "":
					if event == "" {
						continue // after retry:
					}
					var q struct {
						Symbol string `json:"symbol"`
						Seq    uint64 `json:"seq"`
					}
					num, err := strconv.ParseUint(id, 10, 64)
					if event != "quote" || err != nil || num <= lastID || json.Unmarshal([]byte(data), &q) != nil {
						t.Fatalf("malformed event: event %q id %q (after %d) data %.80q", event, id, lastID, data)
					}
					if q.Seq <= last[q.Symbol] {
						t.Fatalf("%s: seq %d after %d", q.Symbol, q.Seq, last[q.Symbol])
					}
					last[q.Symbol], lastID = q.Seq, num
					event, id, data = "", "", ""
				case k == "event":
					event = v
				case k == "id":
					id = v
				case k == "data":
					data = v
				case k == "retry", strings.HasPrefix(line, ":"):
				default:
					t.Fatalf("unexpected line %q", line)
				}
			}
		}
		for pause := 0; n.metric("quotehub_quotes_conflated_total") == 0; pause++ {
			if pause == 10 {
				t.Fatal("10 pauses of 1 s and nothing was conflated")
			}
			time.Sleep(time.Second) // not reading
			readFor(300 * time.Millisecond)
		}
		// Every symbol arrives, however slowly this reader goes.
		for end := time.Now().Add(10 * time.Second); len(last) < 200 && time.Now().Before(end); {
			readFor(50 * time.Millisecond)
		}
		if len(last) != 200 {
			t.Fatalf("got quotes of %d of 200 symbols", len(last))
		}
		var q map[string]any
		getJSON(t, n.url("/v1/quotes/SYN-000001"), &q)
		want := uint64(q["seq"].(float64))
		for end := time.Now().Add(10 * time.Second); last["SYN-000001"] < want && time.Now().Before(end); {
			readFor(50 * time.Millisecond)
		}
		if last["SYN-000001"] < want {
			t.Errorf("the stream did not converge: SYN-000001 holds %d < %d", last["SYN-000001"], want)
		}
	})
}
