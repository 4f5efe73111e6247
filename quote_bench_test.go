package quotehub_test

import (
	"testing"

	"quotehub"
)

// BenchmarkAppendJSON measures the one encoding each update gets per node.
func BenchmarkAppendJSON(b *testing.B) {
	q := quotehub.Quote{Symbol: "KRW-BTC", Price: 143250000, PrevClose: 141000000, Change: 2250000, ChangeRate: 0.015957,
		Volume: 1234.56, Has: quotehub.HasPrevClose | quotehub.HasChange | quotehub.HasChangeRate | quotehub.HasVolume,
		Currency: "KRW", TradeTime: 1763726400123, FetchedAt: 1763726400456, Seq: 42, Source: "upbit", Market: "open"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = q.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
