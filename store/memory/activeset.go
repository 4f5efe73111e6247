package memory

import (
	"context"
	"slices"
	"strings"
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

// Recent implements quotehub.ActiveSet.
func (a *ActiveSet) Recent(_ context.Context, limit int) ([]quotehub.Touched, error) {
	a.mu.Lock()
	out := make([]quotehub.Touched, 0, len(a.last))
	for s, t := range a.last {
		out = append(out, quotehub.Touched{Symbol: s, At: time.UnixMilli(t)})
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y quotehub.Touched) int {
		if c := y.At.Compare(x.At); c != 0 {
			return c
		}
		return strings.Compare(x.Symbol, y.Symbol)
	})
	return out[:min(len(out), max(limit, 0))], nil
}
