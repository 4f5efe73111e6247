-- Closed candles, immutable once written: one row per (symbol, interval,
-- period start). t is the period's start in Unix milliseconds; iv is the
-- interval's name (1m, 5m, 15m, 1h, 1d, 1w, 1M). Reads are ranges of t
-- within one series, the primary key's order.
CREATE TABLE candles (
	symbol TEXT NOT NULL,
	iv TEXT NOT NULL,
	t INTEGER NOT NULL,
	o REAL NOT NULL,
	h REAL NOT NULL,
	l REAL NOT NULL,
	c REAL NOT NULL,
	v REAL NOT NULL,
	PRIMARY KEY (symbol, iv, t)
) WITHOUT ROWID;
