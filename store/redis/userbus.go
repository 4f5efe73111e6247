package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
	onState func(up bool)

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

// OnState sets the function told when the bus comes up (subscribed and
// answering) and goes down (the subscription lost, or a ping unanswered):
// while it is down, events other nodes send may be lost, so what is kept
// on the strength of them must not be trusted. The bus starts down. f
// must not block; it runs before the resync function.
func (b *UserBus) OnState(f func(up bool)) {
	b.mu.Lock()
	b.onState = f
	b.mu.Unlock()
}

// Start subscribes and delivers events until Close.
func (b *UserBus) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.ps = b.rdb.Subscribe(ctx, b.channel)
	b.wg.Add(1)
	go b.receive(ctx)
}

// userBusCheck is how long the subscription may stay silent before the
// bus pings it; a ping not answered within another userBusCheck (or any
// error reading the subscription) makes the bus down.
const userBusCheck = time.Second

// receive delivers events until ctx ends. It reads the subscription
// itself, rather than through go-redis's channel, to know when the
// subscription is lost: a read error, or a ping left unanswered.
func (b *UserBus) receive(ctx context.Context) {
	defer b.wg.Done()
	up, subscribed, pinged := false, 0, false
	setUp := func(now bool) {
		if now == up {
			return
		}
		up = now
		b.mu.RLock()
		change, resync := b.onState, b.resync
		b.mu.RUnlock()
		if change != nil {
			change(now)
		}
		if now && subscribed > 1 && resync != nil { // events may have been lost
			resync()
		}
	}
	for {
		msg, err := b.ps.ReceiveTimeout(ctx, userBusCheck)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				pinged = true
				if b.ps.Ping(ctx) == nil {
					continue
				}
			}
			pinged = false
			if up {
				b.log.Warn().Err(err).Msg("user bus subscription lost or not answering; events may be missed until it is back")
			}
			setUp(false)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed++
				if up { // re-subscribed without a read error seen
					up = false
				}
				setUp(true)
			}
		case *redis.Pong:
			if subscribed > 0 && !up {
				subscribed++ // answering again: what was sent meanwhile may be lost
				setUp(true)
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
