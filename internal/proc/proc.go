// Package proc reads and raises this process's resource limits and usage,
// for quotehub's load generator and benchmark runner.
package proc

import (
	"fmt"
	"syscall"
	"time"
)

// RaiseFileLimit raises the soft open-file limit to the hard limit and
// reports an error when need descriptors would still not fit. It returns
// the soft limit in force afterwards.
func RaiseFileLimit(need uint64) (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		raised := rl
		raised.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			rl = raised
		}
	}
	if need > rl.Cur {
		return rl.Cur, &FileLimitError{Need: need, Cur: rl.Cur, Max: rl.Max}
	}
	return rl.Cur, nil
}

// FileLimitError says that a process may not open as many files as it needs.
type FileLimitError struct {
	Need, Cur, Max uint64
}

func (e *FileLimitError) Error() string {
	return fmt.Sprintf("need about %d open files but this process may open only %d (hard limit %d): "+
		"raise the limit (ulimit -n, or LimitNOFILE / limits.conf)", e.Need, e.Cur, e.Max)
}

// CPUTime is the user + system CPU time this process has used so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
