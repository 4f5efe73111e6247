package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"quotehub"
)

var _ quotehub.UserBus = (*UserBus)(nil)

// UserBus is a quotehub.UserBus on one Redis pub/sub channel that every
// node subscribes to. User events are rare next to quotes (an edit, a fired
// alert), so one channel for all users costs nothing worth sharding; a node
// drops the events of users it has no session of.
type UserBus struct {
	rdb     redis.UniversalClient
	channel string
	log     zerolog.Logger

	mu      sync.RWMutex
	handler func(quotehub.UserEvent)
	resync  func()

	cancel context.CancelFunc
	ps     *redis.PubSub
	wg     sync.WaitGroup
}

// NewUserBus returns the bus of the cluster under prefix; call HandleUser
// (and OnResync), then Start.
func NewUserBus(rdb redis.UniversalClient, prefix string, log *zerolog.Logger) *UserBus {
	l := zerolog.Nop()
	if log != nil {
		l = log.With().Str("component", "userbus").Logger()
	}
	return &UserBus{rdb: rdb, channel: Keys{prefix}.UserEvents(), log: l}
}

// UserEvents is the pub/sub channel of user events.
func (k Keys) UserEvents() string { return k.Prefix + "user-events" }

// HandleUser sets the function that receives every event; it must not
// block.
func (b *UserBus) HandleUser(h func(quotehub.UserEvent)) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// OnResync sets the function called when the subscription was re-made
// after a disconnection, during which events may have been lost: the
// caller re-reads what its sessions follow.
func (b *UserBus) OnResync(f func()) {
	b.mu.Lock()
	b.resync = f
	b.mu.Unlock()
}

// Start subscribes and delivers events until Close.
func (b *UserBus) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.ps = b.rdb.Subscribe(ctx, b.channel)
	ch := b.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024), redis.WithChannelSendTimeout(time.Second))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		subscribed := 0
		for msg := range ch {
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				if subscribed++; subscribed > 1 { // a reconnection: events may be lost
					b.mu.RLock()
					f := b.resync
					b.mu.RUnlock()
					if f != nil {
						f()
					}
				}
			case *redis.Message:
				var ev quotehub.UserEvent
				if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil || ev.User == "" {
					b.log.Warn().Err(err).Msg("dropped a malformed user event")
					continue
				}
				b.mu.RLock()
				h := b.handler
				b.mu.RUnlock()
				if h != nil {
					h(ev)
				}
			}
		}
	}()
}

// Close unsubscribes and waits for the delivery goroutine.
func (b *UserBus) Close() error {
	if b.cancel == nil {
		return nil
	}
	b.cancel()
	err := b.ps.Close()
	b.wg.Wait()
	return err
}

// PublishUser implements quotehub.UserBus.
func (b *UserBus) PublishUser(ctx context.Context, ev quotehub.UserEvent) error {
	if ev.User == "" {
		return errors.New("user event without a user")
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("user event: %w", err)
	}
	if err := b.rdb.Publish(ctx, b.channel, data).Err(); err != nil {
		return fmt.Errorf("redis publish user event: %w", err)
	}
	return nil
}
