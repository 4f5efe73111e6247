package yahootest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"quotehub"
	"quotehub/refresher/upstream/yahoo/yahootest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"

// get requests path from srv with a browser User-Agent (or ua when set)
// and returns the status, headers and body.
func get(t *testing.T, c *http.Client, srv *yahootest.Server, path, ua string) (int, http.Header, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ua == "" {
		ua = browser
	}
	req.Header.Set("User-Agent", ua)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

func newServer(t *testing.T, opts yahootest.Options) (*yahootest.Server, *http.Client) {
	t.Helper()
	srv := yahootest.New(opts)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(srv.Close)
	return srv, c
}

// meta is the part of a chart the tests check.
type meta struct {
	Currency             string   `json:"currency"`
	Symbol               string   `json:"symbol"`
	ExchangeName         string   `json:"exchangeName"`
	ExchangeTimezoneName string   `json:"exchangeTimezoneName"`
	GMTOffset            int      `json:"gmtoffset"`
	RegularMarketTime    int64    `json:"regularMarketTime"`
	RegularMarketPrice   float64  `json:"regularMarketPrice"`
	ChartPreviousClose   float64  `json:"chartPreviousClose"`
	PreviousClose        *float64 `json:"previousClose"`
	Range                string   `json:"range"`
	CurrentTradingPeriod struct {
		Regular struct{ Start, End int64 } `json:"regular"`
	} `json:"currentTradingPeriod"`
}

func decodeMeta(t *testing.T, body []byte) (meta, map[string]any) {
	t.Helper()
	var r struct {
		Chart struct {
			Result []struct {
				Meta meta `json:"meta"`
			} `json:"result"`
			Error any `json:"error"`
		} `json:"chart"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, body)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if len(r.Chart.Result) != 1 || r.Chart.Error != nil {
		t.Fatalf("payload shape: %s", body)
	}
	return r.Chart.Result[0].Meta, raw
}

func TestPayloads(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	// Wednesday 2025-06-11 10:00 KST: KRX open.
	now := time.Date(2025, 6, 11, 10, 0, 0, 0, seoul)
	srv, c := newServer(t, yahootest.Options{Budget: -1, Now: func() time.Time { return now }})
	syms := yahootest.DefaultSymbols()
	var us, kospi int
	for _, s := range syms {
		switch {
		case strings.HasSuffix(s.Symbol, ".KS"):
			kospi++
		case !strings.Contains(s.Symbol, "."):
			us++
		}
		code, _, body, err := get(t, c, srv, "/v8/finance/chart/"+s.Symbol+"?range=1d&interval=1d", "")
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %v", s.Symbol, code, err)
		}
		m, _ := decodeMeta(t, body)
		if m.Symbol != s.Symbol || m.Currency != s.Currency || m.RegularMarketPrice != s.Price ||
			m.ChartPreviousClose != s.PrevClose || m.PreviousClose == nil || *m.PreviousClose != s.PrevClose ||
			m.Range != "1d" || m.ExchangeName != s.ExchangeName {
			t.Fatalf("%s: meta %+v, table %+v", s.Symbol, m, s)
		}
		if m.RegularMarketTime < 1e9 || m.RegularMarketTime >= 1e10 {
			t.Fatalf("%s: regularMarketTime %d is not seconds", s.Symbol, m.RegularMarketTime)
		}
		open := now.Unix() >= m.CurrentTradingPeriod.Regular.Start && now.Unix() < m.CurrentTradingPeriod.Regular.End
		if wantOpen := s.Exchange == quotehub.ExchangeKRX; open != wantOpen {
			t.Fatalf("%s at 10:00 KST: inside the regular period %v", s.Symbol, open)
		}
		if s.Exchange == quotehub.ExchangeKRX && (m.GMTOffset != 9*3600 || m.ExchangeTimezoneName != "Asia/Seoul" ||
			m.CurrentTradingPeriod.Regular.End-m.CurrentTradingPeriod.Regular.Start != 6*3600+1800) {
			t.Fatalf("%s: KRX meta %+v", s.Symbol, m)
		}
		if s.Exchange != quotehub.ExchangeKRX && (m.GMTOffset != -4*3600 || m.ExchangeTimezoneName != "America/New_York" ||
			m.CurrentTradingPeriod.Regular.End-m.CurrentTradingPeriod.Regular.Start != 6*3600+1800) {
			t.Fatalf("%s: US meta %+v", s.Symbol, m)
		}
	}
	if us < 30 || kospi < 20 {
		t.Fatalf("table has %d US and %d KOSPI symbols", us, kospi)
	}

	// A longer range: no previousClose, and chartPreviousClose is older.
	_, _, body, _ := get(t, c, srv, "/v8/finance/chart/AAPL?range=5d&interval=1d", "")
	m, _ := decodeMeta(t, body)
	if m.PreviousClose != nil || m.ChartPreviousClose == 199.20 || m.Range != "5d" {
		t.Fatalf("range=5d: %+v", m)
	}

	// Lookups ignore case; requests are counted per symbol.
	if code, _, _, _ := get(t, c, srv, "/v8/finance/chart/aapl?range=1d", ""); code != http.StatusOK {
		t.Fatalf("lower case: %d", code)
	}
	if n := srv.RequestsFor("AAPL"); n != 3 {
		t.Fatalf("AAPL requested %d times", n)
	}
	if srv.Requests() != int64(len(syms))+2 || srv.Status(http.StatusOK) != int64(len(syms))+2 {
		t.Fatalf("%d requests, %d OK", srv.Requests(), srv.Status(http.StatusOK))
	}
}

func TestMalformedKinds(t *testing.T) {
	srv, c := newServer(t, yahootest.Options{Budget: -1})
	for _, tc := range []struct {
		kind  yahootest.Kind
		check func(meta, map[string]any) bool
	}{
		{yahootest.MissingPrice, func(_ meta, raw map[string]any) bool { return !hasMeta(raw, "regularMarketPrice") }},
		{yahootest.ZeroPrice, func(m meta, raw map[string]any) bool {
			return hasMeta(raw, "regularMarketPrice") && m.RegularMarketPrice == 0
		}},
		{yahootest.MillisTime, func(m meta, _ map[string]any) bool { return m.RegularMarketTime >= 1e12 }},
		{yahootest.NullPreviousClose, func(m meta, raw map[string]any) bool {
			return hasMeta(raw, "previousClose") && m.PreviousClose == nil && m.ChartPreviousClose > 0
		}},
		{yahootest.MissingTime, func(_ meta, raw map[string]any) bool { return !hasMeta(raw, "regularMarketTime") }},
		{yahootest.NoTradingPeriod, func(_ meta, raw map[string]any) bool { return !hasMeta(raw, "currentTradingPeriod") }},
	} {
		srv.SetMalformed("MSFT", tc.kind)
		_, _, body, _ := get(t, c, srv, "/v8/finance/chart/MSFT?range=1d&interval=1d", "")
		m, raw := decodeMeta(t, body)
		if !tc.check(m, raw) {
			t.Fatalf("kind %d: %s", tc.kind, body)
		}
		if served, _ := srv.LastServed("MSFT"); served.Kind != tc.kind {
			t.Fatalf("LastServed kind %d, want %d", served.Kind, tc.kind)
		}
	}
	srv.SetMalformed("MSFT", yahootest.WellFormed)
	srv.SetPreviousCloseNull("NVDA")
	_, _, body, _ := get(t, c, srv, "/v8/finance/chart/MSFT?range=1d&interval=1d", "")
	if m, _ := decodeMeta(t, body); m.RegularMarketPrice <= 0 || m.PreviousClose == nil {
		t.Fatalf("well-formed again: %s", body)
	}
	_, _, body, _ = get(t, c, srv, "/v8/finance/chart/NVDA?range=1d&interval=1d", "")
	if m, _ := decodeMeta(t, body); m.PreviousClose != nil {
		t.Fatalf("SetPreviousCloseNull: %s", body)
	}
}

func hasMeta(raw map[string]any, key string) bool {
	chart := raw["chart"].(map[string]any)
	m := chart["result"].([]any)[0].(map[string]any)["meta"].(map[string]any)
	_, ok := m[key]
	return ok
}

func TestErrorAnswers(t *testing.T) {
	srv, c := newServer(t, yahootest.Options{Budget: 2, RetryAfter: 1500 * time.Millisecond})

	code, h, body, _ := get(t, c, srv, "/v8/finance/chart/NOSUCH", "")
	if code != http.StatusNotFound || !strings.Contains(string(body), `"code":"Not Found"`) ||
		!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("unknown: %d %s", code, body)
	}
	_, _, _, _ = get(t, c, srv, "/v8/finance/chart/AAPL", "")
	code, h, body, _ = get(t, c, srv, "/v8/finance/chart/AAPL", "")
	if code != http.StatusTooManyRequests || string(body) != "Too Many Requests" ||
		h.Get("Retry-After") != "2" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("over budget: %d %q %v", code, body, h)
	}
	if srv.Status(http.StatusTooManyRequests) != 1 || srv.MaxPerSecond() != 3 {
		t.Fatalf("%d 429s, max %d per second", srv.Status(http.StatusTooManyRequests), srv.MaxPerSecond())
	}

	srv.SetBudget(-1)
	if code, _, _, _ := get(t, c, srv, "/v8/finance/chart/AAPL", "Go-http-client/1.1"); code != http.StatusTooManyRequests {
		t.Fatalf("a non-browser User-Agent got %d", code)
	}

	srv.SetDown(true)
	if code, _, body, _ := get(t, c, srv, "/v8/finance/chart/AAPL", ""); code != http.StatusServiceUnavailable ||
		!strings.Contains(string(body), "<html") {
		t.Fatalf("down: %d %s", code, body)
	}
	srv.SetDown(false)

	srv.SetUnauthorized(0.5)
	var codes []int
	for range 4 {
		code, _, body, _ := get(t, c, srv, "/v8/finance/chart/AAPL", "")
		codes = append(codes, code)
		if code == http.StatusUnauthorized && !strings.Contains(string(body), `"Unauthorized"`) {
			t.Fatalf("401 body %s", body)
		}
	}
	if codes[0] != 200 || codes[1] != 401 || codes[2] != 200 || codes[3] != 401 {
		t.Fatalf("rate 0.5 gave %v", codes)
	}
	srv.SetUnauthorized(0)

	// Sequential requests are one in flight at a time. (Checked before the
	// reset case: Go's client retries a reset request on a new connection,
	// which may overlap the first handler's last instant.)
	srv.SetLatency(50 * time.Millisecond)
	start := time.Now()
	if code, _, _, _ := get(t, c, srv, "/v8/finance/chart/AAPL", ""); code != http.StatusOK || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("latency: %d after %v", code, time.Since(start))
	}
	if srv.MaxInFlight() != 1 || srv.InFlight() != 0 {
		t.Fatalf("in flight %d, max %d", srv.InFlight(), srv.MaxInFlight())
	}
	srv.SetLatency(0)

	srv.SetTruncate(true)
	if _, _, _, err := get(t, c, srv, "/v8/finance/chart/AAPL", ""); err == nil {
		t.Fatal("a truncated body read without error")
	}
	srv.SetTruncate(false)
	srv.SetReset(true)
	if _, _, _, err := get(t, c, srv, "/v8/finance/chart/AAPL", ""); err == nil {
		t.Fatal("a reset connection gave an answer")
	}
	srv.SetReset(false)

}
