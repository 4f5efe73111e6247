package memory

import (
	"context"
	"sync"

	"quotehub"
)

var _ quotehub.Bus = (*Bus)(nil)

// Bus is an in-process quotehub.Bus for a single node: Publish hands the
// quotes straight to the handler, on the publisher's goroutine. The handler
// must not block (the hub's fan-out never does).
type Bus struct {
	mu      sync.RWMutex
	handler func([]quotehub.Quote)
}

// NewBus returns a bus with no handler; quotes published before Handle are
// dropped.
func NewBus() *Bus { return &Bus{} }

// Handle sets the function that receives every published batch.
func (b *Bus) Handle(h func([]quotehub.Quote)) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// Publish implements quotehub.Bus.
func (b *Bus) Publish(_ context.Context, quotes []quotehub.Quote) error {
	b.mu.RLock()
	h := b.handler
	b.mu.RUnlock()
	if h != nil && len(quotes) > 0 {
		h(quotes)
	}
	return nil
}

// Watch implements quotehub.Bus. Everything published reaches the one local
// handler, so there is nothing to do.
func (b *Bus) Watch(string) {}

// Unwatch implements quotehub.Bus.
func (b *Bus) Unwatch(string) {}
