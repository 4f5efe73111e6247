package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"quotehub"
	"quotehub/internal/shard"
)

var _ quotehub.Bus = (*Bus)(nil)

// BusOptions configure a Bus. Zero values take the documented defaults.
type BusOptions struct {
	// Prefix of every channel.
	Prefix string
	// Shards is the number of bus shards: symbols hash onto shards, each
	// shard's channels share a hash tag and one subscriber connection.
	// Default 16.
	Shards int
	// Sharded switches to sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+),
	// for Redis Cluster. Channel names are the same either way.
	Sharded bool
	// Cache is read to resynchronise watched symbols: after their
	// subscription is confirmed, after a reconnect, and every ResyncEvery.
	Cache quotehub.Cache
	// UnwatchGrace keeps a channel subscribed this long after its last
	// watcher left, so subscription flips cost no Redis commands. Default 5 s.
	UnwatchGrace time.Duration
	// ResyncEvery re-reads every watched symbol from the cache, repairing
	// anything pub/sub lost (it is at-most-once). Default 30 s.
	ResyncEvery time.Duration
	Metrics     *Metrics
	Logger      *zerolog.Logger
}

// Bus is a quotehub.Bus on Redis pub/sub: one channel per symbol, a node
// subscribed only to the symbols it has local subscribers for. Watch and
// Unwatch never block: a worker per shard applies them.
type Bus struct {
	rdb     redis.UniversalClient
	opts    BusOptions
	keys    Keys
	shards  []*busShard
	log     zerolog.Logger
	mu      sync.RWMutex
	handler func([]quotehub.Quote)
	cancel  context.CancelFunc
	workers sync.WaitGroup // the shards' workers
	pumps   sync.WaitGroup // the shards' pumps, which end when ps closes
}

type busShard struct {
	b       *Bus
	n       int
	ps      *redis.PubSub // owned by the worker until Close; nil until the first SSUBSCRIBE
	wake    chan struct{}
	mu      sync.Mutex
	want    map[string]bool      // symbol → wanted now
	dropAt  map[string]time.Time // unwanted symbols still subscribed, and when to drop them
	subbed  map[string]bool      // symbol → SUBSCRIBE sent
	pending map[string]bool      // symbols whose confirmation has not arrived yet
	stale   map[string]bool      // symbols to re-read from the cache
}

// NewBus returns a bus; call Handle, then Start.
func NewBus(rdb redis.UniversalClient, opts BusOptions) *Bus {
	if opts.Shards <= 0 {
		opts.Shards = 16
	}
	if opts.UnwatchGrace <= 0 {
		opts.UnwatchGrace = 5 * time.Second
	}
	if opts.ResyncEvery <= 0 {
		opts.ResyncEvery = 30 * time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		l := zerolog.Nop()
		opts.Logger = &l
	}
	b := &Bus{rdb: rdb, opts: opts, keys: Keys{opts.Prefix}, log: opts.Logger.With().Str("component", "bus").Logger()}
	for i := range opts.Shards {
		b.shards = append(b.shards, &busShard{
			b: b, n: i, wake: make(chan struct{}, 1), want: map[string]bool{}, dropAt: map[string]time.Time{},
			subbed: map[string]bool{}, pending: map[string]bool{}, stale: map[string]bool{},
		})
	}
	return b
}

// Handle sets the function that receives every quote from the bus. It must
// not block (the hub's Publish never does) and must not keep the slice.
func (b *Bus) Handle(h func([]quotehub.Quote)) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

func (b *Bus) deliver(qs []quotehub.Quote) {
	b.mu.RLock()
	h := b.handler
	b.mu.RUnlock()
	if h != nil && len(qs) > 0 {
		h(qs)
	}
}

// Start opens one subscriber connection per shard and runs the shards'
// workers and pumps until Close.
func (b *Bus) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range b.shards {
		if !b.opts.Sharded {
			// A plain subscription hears a channel on any node of a
			// cluster: the connection can be opened at once.
			s.open(b.rdb.Subscribe(ctx))
		}
		b.workers.Add(1)
		go func() { defer b.workers.Done(); s.work(ctx) }()
	}
}

// open starts the pump of the shard's subscriber connection.
func (s *busShard) open(ps *redis.PubSub) {
	s.ps = ps
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(4096), redis.WithChannelSendTimeout(time.Second))
	s.b.pumps.Add(1)
	go func() { defer s.b.pumps.Done(); s.pump(ch) }()
}

// Close stops the workers and closes the subscriber connections.
func (b *Bus) Close() error {
	if b.cancel != nil {
		b.cancel()
	}
	b.workers.Wait() // no worker opens a connection any more
	for _, s := range b.shards {
		if s.ps != nil {
			_ = s.ps.Close()
		}
	}
	b.pumps.Wait()
	return nil
}

func (b *Bus) shard(symbol string) *busShard {
	return b.shards[shard.Of(symbol, len(b.shards))]
}

// Watch implements quotehub.Bus.
func (b *Bus) Watch(symbol string) {
	s := b.shard(symbol)
	s.mu.Lock()
	s.want[symbol] = true
	delete(s.dropAt, symbol)
	s.mu.Unlock()
	s.poke()
}

// Unwatch implements quotehub.Bus: the channel is dropped after the grace
// period unless the symbol is watched again.
func (b *Bus) Unwatch(symbol string) {
	s := b.shard(symbol)
	s.mu.Lock()
	delete(s.want, symbol)
	if s.subbed[symbol] {
		s.dropAt[symbol] = time.Now().Add(b.opts.UnwatchGrace)
	}
	s.mu.Unlock()
	s.poke()
}

// Publish implements quotehub.Bus: one pipelined round trip for the batch.
// If Redis cannot take it, the quotes are delivered to this node's own
// subscribers, so they keep getting what this node fetches.
func (b *Bus) Publish(ctx context.Context, quotes []quotehub.Quote) error {
	if len(quotes) == 0 {
		return nil
	}
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range quotes {
			q := &quotes[i]
			ch := b.keys.Channel(b.shard(q.Symbol).n, q.Symbol)
			if b.opts.Sharded {
				p.SPublish(ctx, ch, q.AppendJSON(nil))
			} else {
				p.Publish(ctx, ch, q.AppendJSON(nil))
			}
		}
		return nil
	})
	if err != nil {
		b.opts.Metrics.PublishErrors.Inc()
		b.deliver(quotes)
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// Resync re-reads every watched symbol from the cache and delivers it; the
// hub drops what its clients already have. reason labels the metric.
func (b *Bus) Resync(reason string) {
	for _, s := range b.shards {
		s.mu.Lock()
		syms := make([]string, 0, len(s.want))
		for sym := range s.want {
			syms = append(syms, sym)
		}
		s.mu.Unlock()
		s.queueResync(syms, reason)
	}
}

// Settle waits until the subscriptions of symbols are confirmed by Redis.
func (b *Bus) Settle(ctx context.Context, symbols ...string) error {
	for _, sym := range symbols {
		s := b.shard(sym)
		for {
			s.mu.Lock()
			done := s.subbed[sym] && !s.pending[sym]
			s.mu.Unlock()
			if done {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("subscription of %s not confirmed: %w", sym, ctx.Err())
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

func (s *busShard) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queueResync marks syms to be re-read by the worker; marks coalesce, so
// a reconnect that confirms a thousand channels costs one read.
func (s *busShard) queueResync(syms []string, reason string) {
	if len(syms) == 0 {
		return
	}
	s.b.opts.Metrics.Resyncs.WithLabelValues(reason).Add(float64(len(syms)))
	s.mu.Lock()
	for _, sym := range syms {
		s.stale[sym] = true
	}
	s.mu.Unlock()
	s.poke()
}

// work applies Watch/Unwatch to the shard's subscription and runs resyncs.
func (s *busShard) work(ctx context.Context) {
	b := s.b
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	periodic := time.NewTicker(b.opts.ResyncEvery)
	defer periodic.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		case <-periodic.C:
			s.mu.Lock()
			syms := make([]string, 0, len(s.want))
			for sym := range s.want {
				syms = append(syms, sym)
			}
			s.mu.Unlock()
			s.queueResync(syms, "periodic")
		}
		now := time.Now()
		var add, drop, reread []string
		next := time.Hour
		s.mu.Lock()
		for sym := range s.stale {
			if s.want[sym] {
				reread = append(reread, sym)
			}
		}
		clear(s.stale)
		for sym := range s.want {
			if !s.subbed[sym] {
				add = append(add, sym)
				s.subbed[sym] = true
				s.pending[sym] = true
			}
		}
		for sym, at := range s.dropAt {
			if now.Before(at) {
				next = min(next, at.Sub(now))
				continue
			}
			delete(s.dropAt, sym)
			delete(s.subbed, sym)
			delete(s.pending, sym)
			drop = append(drop, sym)
		}
		s.mu.Unlock()
		timer.Reset(next)
		if len(add) > 0 {
			// go-redis records the channels even if the command cannot be
			// written now, and subscribes them again on every reconnect.
			if err := s.subscribe(ctx, add); err != nil {
				b.log.Warn().Err(err).Int("channels", len(add)).Msg("subscribe failed; retried on reconnect")
			}
			b.opts.Metrics.Channels.Add(float64(len(add)))
		}
		if len(drop) > 0 {
			if err := s.unsubscribe(ctx, drop); err != nil {
				b.log.Warn().Err(err).Int("channels", len(drop)).Msg("unsubscribe failed")
			}
			b.opts.Metrics.Channels.Sub(float64(len(drop)))
		}
		if len(reread) > 0 {
			s.doResync(ctx, reread)
		}
	}
}

func (s *busShard) channels(syms []string) []string {
	out := make([]string, len(syms))
	for i, sym := range syms {
		out[i] = s.b.keys.Channel(s.n, sym)
	}
	return out
}

func (s *busShard) subscribe(ctx context.Context, syms []string) error {
	if s.b.opts.Sharded {
		if s.ps == nil {
			// A cluster client opens a PubSub's connection on the master
			// serving the slot of its first channel, or on a random node
			// if it has none yet: it must be created with its channels
			// (one hash tag per shard, so one slot and one master), and
			// its pump started only then, or it would read from a random
			// node where the SSUBSCRIBE is answered with MOVED and
			// nothing is ever delivered.
			ps := s.b.rdb.SSubscribe(ctx, s.channels(syms)...)
			s.open(ps)
			return nil
		}
		return s.ps.SSubscribe(ctx, s.channels(syms)...)
	}
	return s.ps.Subscribe(ctx, s.channels(syms)...)
}

func (s *busShard) unsubscribe(ctx context.Context, syms []string) error {
	if s.ps == nil {
		return nil
	}
	if s.b.opts.Sharded {
		return s.ps.SUnsubscribe(ctx, s.channels(syms)...)
	}
	return s.ps.Unsubscribe(ctx, s.channels(syms)...)
}

// doResync reads syms from the cache and delivers them.
func (s *busShard) doResync(ctx context.Context, syms []string) {
	if s.b.opts.Cache == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	qs, err := s.b.opts.Cache.GetMany(rctx, syms)
	if err != nil {
		s.b.log.Debug().Err(err).Msg("resync read failed")
		return
	}
	out := qs[:0]
	for _, q := range qs {
		if q.Symbol != "" {
			out = append(out, q)
		}
	}
	s.b.deliver(out)
}

// pump decodes messages and hands them to the hub in batches; it never
// waits on anything else, so Redis never has to buffer for this node.
func (s *busShard) pump(ch <-chan any) {
	b := s.b
	batch := make([]quotehub.Quote, 0, 256)
	handle := func(msg any) {
		switch m := msg.(type) {
		case *redis.Message:
			var q quotehub.Quote
			if err := json.Unmarshal([]byte(m.Payload), &q); err != nil || q.Symbol == "" {
				b.log.Warn().Str("channel", m.Channel).Msg("undecodable message on the bus")
				return
			}
			batch = append(batch, q)
		case *redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "ssubscribe" {
				return
			}
			sym, ok := b.keys.symbolOf(m.Channel)
			if !ok {
				return
			}
			s.mu.Lock()
			first := s.pending[sym]
			delete(s.pending, sym)
			s.mu.Unlock()
			if first {
				// Quotes published before the subscription took effect were
				// missed: read the current value once.
				s.queueResync([]string{sym}, "subscribed")
			} else {
				// A confirmation for a channel we already had: go-redis
				// reconnected and subscribed again; anything could be lost.
				s.queueResync([]string{sym}, "reconnect")
			}
		}
	}
	for msg := range ch {
		handle(msg)
	drain:
		for len(batch) < cap(batch) {
			select {
			case m, ok := <-ch:
				if !ok {
					break drain
				}
				handle(m)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			b.opts.Metrics.Received.Add(float64(len(batch)))
			b.deliver(batch)
			batch = batch[:0]
		}
	}
}
