package upbittest_test

import (
	"testing"
	"time"

	"quotehub/refresher/upstream/upbit/upbittest"
)

// TestRetryAfterOf429: a 429 carries the configured Retry-After (whole
// seconds, rounded up), so a client that ignores it and waits the usual
// second can be told apart from one that honours it.
func TestRetryAfterOf429(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{0, "1"},
		{7 * time.Second, "7"},
		{2500 * time.Millisecond, "3"},
	} {
		s := upbittest.New(upbittest.Options{RetryAfterHeader: true, RetryAfter: tc.wait})
		s.SetBudget(0)
		resp, _ := get(t, client(t), s.URL()+"/v1/ticker?markets=KRW-BTC")
		s.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != tc.want {
			t.Errorf("RetryAfter %v: %d Retry-After=%q, want 429 with %q", tc.wait, resp.StatusCode, resp.Header.Get("Retry-After"), tc.want)
		}
	}
}
