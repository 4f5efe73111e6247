package history

import (
	"time"

	"quotehub"
)

// ChunkExpiry exposes when the cached chunk of s holding t expires at now.
func ChunkExpiry(cal *quotehub.Calendar, s quotehub.CandleSeries, t, now time.Time, keep, grace time.Duration) (time.Time, bool) {
	return chunkAt(cal, s, t).expiry(cal, s.Interval, now, keep, grace)
}
