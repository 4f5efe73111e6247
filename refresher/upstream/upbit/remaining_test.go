package upbit

import (
	"testing"
	"time"
)

func TestRemainingSec(t *testing.T) {
	for _, tc := range []struct {
		header string
		sec    int
		ok     bool
	}{
		{"group=ticker; min=600; sec=9", 9, true},
		{"group=default; min=1800; sec=0", 0, true},
		{"group=order-cancel-all;min=10;sec=1", 1, true},
		{" SEC = 3 ; group=market", 3, true},
		{"", 0, false},
		{"group=ticker; min=600", 0, false},
		{"group=ticker; sec=", 0, false},
		{"group=ticker; sec=abc", 0, false},
		{"sec=-1", 0, false},
		{"garbage", 0, false},
		{";;==;", 0, false},
	} {
		sec, ok := remainingSec(tc.header)
		if sec != tc.sec || ok != tc.ok {
			t.Errorf("remainingSec(%q) = %d, %v; want %d, %v", tc.header, sec, ok, tc.sec, tc.ok)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 7, 4, 5, 14, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"1":                             time.Second,
		"0":                             0,
		"-5":                            0,
		"2.5":                           2500 * time.Millisecond,
		"soon":                          0,
		"Fri, 04 Jul 2025 05:14:30 GMT": 30 * time.Second,
		"Fri, 04 Jul 2025 05:13:00 GMT": 0,
		"999999":                        time.Hour,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestBlockTimeInBody(t *testing.T) {
	for body, want := range map[string]time.Duration{
		`{"error":{"name":418,"message":"Too many requests. Access is blocked for 60 seconds."}}`: time.Minute,
		`{"error":{"name":418,"message":"요청 수 초과로 30초 동안 차단되었습니다."}}`:                             30 * time.Second,
		`{"error":{"name":"too_many_requests","message":"blocked 5 min"}}`:                        5 * time.Minute,
		`{"error":{"name":418,"message":"Too many requests. Access is temporarily blocked."}}`:    0,
		`blocked for 90s`:  90 * time.Second,
		`sent 10 messages`: 0,
		``:                 0,
		`{"error":null}`:   0,
		`<html>418</html>`: 0,
	} {
		if got := blockTimeInBody([]byte(body)); got != want {
			t.Errorf("blockTimeInBody(%s) = %v, want %v", body, got, want)
		}
	}
}

func TestValidCode(t *testing.T) {
	for s, want := range map[string]bool{
		"KRW-BTC": true, "USDT-ETH": true, "KRW-1INCH": true, "BTC-ETH": true,
		"krw-btc": false, "KRW": false, "KRW-": false, "-BTC": false, "KRW-BTC-X": false,
		"KRW-BTC,KRW-ETH": false, "KRW-BT C": false, "": false, "005930.KS": false,
	} {
		if got := validCode(s); got != want {
			t.Errorf("validCode(%q) = %v", s, got)
		}
	}
}
