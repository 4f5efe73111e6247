-- A fired alert keeps which way the price went through the line and the
-- previous close a move was measured from, as its frames carry them.
-- MySQL commits each ALTER on its own, so each is re-runnable.
ALTER TABLE fired_alerts ADD COLUMN IF NOT EXISTS direction VARCHAR(4) NOT NULL DEFAULT '';
ALTER TABLE fired_alerts ADD COLUMN IF NOT EXISTS prev_close DOUBLE NOT NULL DEFAULT 0;
