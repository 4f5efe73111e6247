-- Closed candles, immutable once written: one row per (symbol, interval,
-- period start). t is the period's start in Unix milliseconds; iv is the
-- interval's name (1m, 5m, 15m, 1h, 1d, 1w, 1M; binary collation tells 1m
-- from 1M). Reads are ranges of t within one series, the primary key's
-- order. DOUBLE keeps every float64 exactly.
CREATE TABLE IF NOT EXISTS candles (
	symbol VARCHAR(32) NOT NULL,
	iv VARCHAR(4) NOT NULL,
	t BIGINT NOT NULL,
	o DOUBLE NOT NULL,
	h DOUBLE NOT NULL,
	l DOUBLE NOT NULL,
	c DOUBLE NOT NULL,
	v DOUBLE NOT NULL,
	PRIMARY KEY (symbol, iv, t)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
