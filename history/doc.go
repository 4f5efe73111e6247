// Package history serves candles: it cuts quotes into the candles of each
// interval on the market's own calendar (Builder), computes moving
// averages incrementally (SMA, EMA), and reads candles through a cache
// keyed by the period each chunk covers, from the store or, once per
// chunk, from the upstream (Service).
//
// It knows the root package's interfaces only: sockets, SQL and Redis are
// behind quotehub.CandleStore, quotehub.CandleCache and
// quotehub.CandleSource.
package history
