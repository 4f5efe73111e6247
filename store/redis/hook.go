package redis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// commandHook times every command and pipeline the node sends to Redis
// (pub/sub reads are not commands and are not timed).
type commandHook struct{ m *Metrics }

// Hook returns a go-redis hook that observes each command's and each
// pipeline's round trip in quotehub_redis_command_duration_seconds; add
// it with rdb.AddHook.
func (m *Metrics) Hook() redis.Hook { return commandHook{m} }

func (h commandHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h commandHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.m.Commands.WithLabelValues("command").Observe(time.Since(start).Seconds())
		return err
	}
}

func (h commandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.m.Commands.WithLabelValues("pipeline").Observe(time.Since(start).Seconds())
		return err
	}
}
