package backoff_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"quotehub/internal/backoff"
)

func TestDelay(t *testing.T) {
	const base, most = 100 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name   string
		n      int
		random float64
		want   time.Duration
	}{
		{"first retry waits up to base", 0, 0.5, 50 * time.Millisecond},
		{"each retry doubles the ceiling", 3, 0.5, 400 * time.Millisecond},
		{"the ceiling stops at most", 5, 0.5, time.Second},
		{"a shift past the width of a duration keeps most", 70, 0.5, time.Second},
		{"zero random is no wait", 4, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff.Delay(tt.n, base, most, func() float64 { return tt.random }); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
	t.Run("nil random stays within the ceiling", func(t *testing.T) {
		for n := range 40 {
			if d := backoff.Delay(n, base, most, nil); d < 0 || d >= most {
				t.Fatalf("Delay(%d) = %v, want within [0, %v)", n, d, most)
			}
		}
	})
}

func TestSleep(t *testing.T) {
	t.Run("waits d", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if err := backoff.Sleep(t.Context(), time.Minute); err != nil {
				t.Fatalf("Sleep = %v, want nil", err)
			}
			if waited := time.Since(start); waited != time.Minute {
				t.Errorf("waited %v, want 1m", waited)
			}
		})
	})
	t.Run("ends with ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			start := time.Now()
			if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Sleep = %v, want DeadlineExceeded", err)
			}
			if waited := time.Since(start); waited != time.Second {
				t.Errorf("waited %v, want 1s", waited)
			}
		})
	})
	t.Run("no wait reports an ended ctx", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		if err := backoff.Sleep(ctx, 0); err != nil {
			t.Fatalf("Sleep(live ctx, 0) = %v, want nil", err)
		}
		cancel()
		if err := backoff.Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(canceled ctx, 0) = %v, want Canceled", err)
		}
	})
}
