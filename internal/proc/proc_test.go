package proc

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRaiseFileLimit(t *testing.T) {
	cur, err := RaiseFileLimit(16)
	if err != nil || cur < 16 {
		t.Fatalf("RaiseFileLimit(16) = %d, %v", cur, err)
	}
	// The soft limit is now the hard one: opening up to it must work.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = RaiseFileLimit(math.MaxUint64)
	var fe *FileLimitError
	if !errors.As(err, &fe) || fe.Need != math.MaxUint64 || fe.Cur != cur || !strings.Contains(err.Error(), "ulimit -n") {
		t.Fatalf("RaiseFileLimit(max) = %v, want a FileLimitError naming ulimit -n with cur %d", err, cur)
	}
}

func TestCPUTimeAdvances(t *testing.T) {
	before := CPUTime()
	if before <= 0 {
		t.Fatalf("CPUTime() = %v at start", before)
	}
	// Spin (CPU time, not sleep) until 10 ms more is counted; 5 s of wall
	// time is ample on a loaded machine.
	start := time.Now()
	for CPUTime()-before < 10*time.Millisecond {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("CPUTime advanced only %v over a 5 s spin", CPUTime()-before)
		}
	}
}
