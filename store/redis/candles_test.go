package redis_test

import (
	"testing"

	"quotehub"
	"quotehub/store/redis"
	"quotehub/store/storetest"
)

func TestCandleCacheConformance(t *testing.T) {
	storetest.TestCandleCache(t, func(t *testing.T) quotehub.CandleCache {
		rdb, prefix := testRedis(t)
		return redis.NewCandleCache(rdb, prefix)
	})
}
