package memory

import (
	"context"
	"errors"
	"sync"

	"quotehub"
)

var _ quotehub.UserBus = (*UserBus)(nil)

// UserBus is the single node's quotehub.UserBus: PublishUser hands the
// event to the handler on the publisher's goroutine. Nothing is ever
// missed, so there is no resync.
type UserBus struct {
	mu      sync.RWMutex
	handler func(quotehub.UserEvent)
}

// NewUserBus returns a bus with no handler.
func NewUserBus() *UserBus { return &UserBus{} }

// HandleUser sets the function that receives every event. It must not
// block.
func (b *UserBus) HandleUser(h func(quotehub.UserEvent)) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// PublishUser implements quotehub.UserBus.
func (b *UserBus) PublishUser(_ context.Context, ev quotehub.UserEvent) error {
	if ev.User == "" {
		return errors.New("user event without a user")
	}
	b.mu.RLock()
	h := b.handler
	b.mu.RUnlock()
	if h != nil {
		h(ev)
	}
	return nil
}
