package upbit_test

import (
	"errors"
	"testing"
	"time"

	"quotehub"
	"quotehub/refresher/upstream/upbit"
	"quotehub/refresher/upstream/upbit/upbittest"
)

// TestFetchHonoursRetryAfterOf429: the wait a 429 asks for is the wait the
// provider reports and keeps, not its default of one second. The fake asks
// for 7 s, so an adapter that ignored the header would say 1 s.
func TestFetchHonoursRetryAfterOf429(t *testing.T) {
	s, p := setup(t, upbittest.Options{RetryAfterHeader: true, RetryAfter: 7 * time.Second}, upbit.Options{})
	s.SetBudget(0)
	_, err := fetch(t, p, "KRW-BTC")
	var bo *quotehub.Backoff
	if !errors.As(err, &bo) || quotehub.ErrorCode(err) != quotehub.ERateLimited || bo.After != 7*time.Second {
		t.Fatalf("429 with Retry-After: 7: %v, want a rate_limited Backoff of 7s", err)
	}
	// The provider keeps to it: a call within the wait fails fast with
	// what is left of the 7 s (far more than the default second), without
	// a request.
	sent := s.Requests()
	_, err = fetch(t, p, "KRW-ETH")
	if !errors.As(err, &bo) || quotehub.ErrorCode(err) != quotehub.ERateLimited || bo.After <= 5*time.Second || bo.After > 7*time.Second {
		t.Fatalf("during the wait: %v, want a Backoff of what is left of 7s", err)
	}
	t.Logf("left of the wait on the second call: %v", bo.After)
	if s.Requests() != sent {
		t.Errorf("%d requests sent during the wait", s.Requests()-sent)
	}
}
