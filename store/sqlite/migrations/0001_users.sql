-- Users' watchlists, portfolios, trades, alert rules and fired alerts.
-- Times are Unix milliseconds; every row is keyed by its user first.
CREATE TABLE user_counters (
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

CREATE TABLE watchlists (
	user_id TEXT NOT NULL,
	id TEXT NOT NULL,
	name TEXT NOT NULL,
	seq INTEGER NOT NULL,
	version INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id),
	UNIQUE (user_id, name)
) WITHOUT ROWID;
CREATE INDEX watchlists_by_seq ON watchlists (user_id, seq);

CREATE TABLE watchlist_symbols (
	user_id TEXT NOT NULL,
	watchlist_id TEXT NOT NULL,
	pos INTEGER NOT NULL,
	symbol TEXT NOT NULL,
	PRIMARY KEY (user_id, watchlist_id, pos)
) WITHOUT ROWID;
CREATE INDEX watchlist_symbols_by_symbol ON watchlist_symbols (symbol);

CREATE TABLE portfolios (
	user_id TEXT NOT NULL PRIMARY KEY,
	base_currency TEXT NOT NULL,
	version INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE holdings (
	user_id TEXT NOT NULL,
	symbol TEXT NOT NULL,
	pos INTEGER NOT NULL,
	quantity REAL NOT NULL,
	avg_cost REAL NOT NULL,
	currency TEXT NOT NULL,
	PRIMARY KEY (user_id, symbol)
) WITHOUT ROWID;
CREATE INDEX holdings_by_symbol ON holdings (symbol);

CREATE TABLE trades (
	user_id TEXT NOT NULL,
	id INTEGER NOT NULL,
	symbol TEXT NOT NULL,
	side TEXT NOT NULL,
	quantity REAL NOT NULL,
	price REAL NOT NULL,
	currency TEXT NOT NULL,
	traded_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
) WITHOUT ROWID;

CREATE TABLE alert_rules (
	user_id TEXT NOT NULL,
	id INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	symbol TEXT NOT NULL,
	kind TEXT NOT NULL,
	threshold REAL NOT NULL,
	rearm REAL NOT NULL,
	enabled INTEGER NOT NULL,
	version INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX alert_rules_by_seq ON alert_rules (user_id, seq);
CREATE UNIQUE INDEX alert_rules_id ON alert_rules (id);
CREATE INDEX alert_rules_enabled ON alert_rules (enabled, id);

CREATE TABLE fired_alerts (
	user_id TEXT NOT NULL,
	id INTEGER NOT NULL,
	rule_id INTEGER NOT NULL,
	symbol TEXT NOT NULL,
	kind TEXT NOT NULL,
	threshold REAL NOT NULL,
	price REAL NOT NULL,
	fired_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
