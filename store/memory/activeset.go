package memory

import (
	"context"
	"sync"
	"time"

	"quotehub"
)

var _ quotehub.ActiveSet = (*ActiveSet)(nil)

// ActiveSet is an in-process quotehub.ActiveSet: symbol → last use.
type ActiveSet struct {
	mu   sync.Mutex
	last map[string]int64 // Unix ms
}

// NewActiveSet returns an empty active set.
func NewActiveSet() *ActiveSet { return &ActiveSet{last: make(map[string]int64)} }

// Touch implements quotehub.ActiveSet.
func (a *ActiveSet) Touch(_ context.Context, t time.Time, symbols ...string) error {
	ms := t.UnixMilli()
	a.mu.Lock()
	for _, s := range symbols {
		if ms > a.last[s] {
			a.last[s] = ms
		}
	}
	a.mu.Unlock()
	return nil
}

// Active implements quotehub.ActiveSet.
func (a *ActiveSet) Active(_ context.Context, since time.Time) ([]string, error) {
	ms := since.UnixMilli()
	a.mu.Lock()
	out := make([]string, 0, len(a.last))
	for s, t := range a.last {
		if t >= ms {
			out = append(out, s)
		}
	}
	a.mu.Unlock()
	return out, nil
}

// Prune implements quotehub.ActiveSet.
func (a *ActiveSet) Prune(_ context.Context, before time.Time) error {
	ms := before.UnixMilli()
	a.mu.Lock()
	for s, t := range a.last {
		if t < ms {
			delete(a.last, s)
		}
	}
	a.mu.Unlock()
	return nil
}
