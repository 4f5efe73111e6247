-- A fired alert keeps which way the price went through the line and the
-- previous close a move was measured from, as its frames carry them.
ALTER TABLE fired_alerts ADD COLUMN direction TEXT NOT NULL DEFAULT '';
ALTER TABLE fired_alerts ADD COLUMN prev_close REAL NOT NULL DEFAULT 0;
