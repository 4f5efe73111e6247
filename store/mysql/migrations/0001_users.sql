-- Users' watchlists, portfolios, trades, alert rules and fired alerts.
-- Times are Unix milliseconds; every row is keyed by its user first.
-- Strings compare byte for byte (utf8mb4_bin), as in the embedded store.
-- MySQL commits each CREATE on its own, so every statement is re-runnable.
CREATE TABLE IF NOT EXISTS user_counters (
	user_id VARCHAR(255) NOT NULL,
	name VARCHAR(32) NOT NULL,
	value BIGINT NOT NULL,
	PRIMARY KEY (user_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS watchlists (
	user_id VARCHAR(255) NOT NULL,
	id VARCHAR(32) NOT NULL,
	name VARCHAR(255) NOT NULL,
	seq BIGINT NOT NULL,
	version BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id),
	UNIQUE KEY watchlists_name (user_id, name),
	KEY watchlists_by_seq (user_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS watchlist_symbols (
	user_id VARCHAR(255) NOT NULL,
	watchlist_id VARCHAR(32) NOT NULL,
	pos INT NOT NULL,
	symbol VARCHAR(32) NOT NULL,
	PRIMARY KEY (user_id, watchlist_id, pos),
	KEY watchlist_symbols_by_symbol (symbol)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS portfolios (
	user_id VARCHAR(255) NOT NULL PRIMARY KEY,
	base_currency CHAR(3) NOT NULL,
	version BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS holdings (
	user_id VARCHAR(255) NOT NULL,
	symbol VARCHAR(32) NOT NULL,
	pos INT NOT NULL,
	quantity DOUBLE NOT NULL,
	avg_cost DOUBLE NOT NULL,
	currency CHAR(3) NOT NULL,
	PRIMARY KEY (user_id, symbol),
	KEY holdings_by_symbol (symbol)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS trades (
	user_id VARCHAR(255) NOT NULL,
	id BIGINT NOT NULL,
	symbol VARCHAR(32) NOT NULL,
	side VARCHAR(4) NOT NULL,
	quantity DOUBLE NOT NULL,
	price DOUBLE NOT NULL,
	currency CHAR(3) NOT NULL,
	traded_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS alert_rules (
	user_id VARCHAR(255) NOT NULL,
	id BIGINT NOT NULL,
	seq BIGINT NOT NULL,
	symbol VARCHAR(32) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	threshold DOUBLE NOT NULL,
	rearm DOUBLE NOT NULL,
	enabled BOOLEAN NOT NULL,
	version BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id),
	KEY alert_rules_by_seq (user_id, seq),
	UNIQUE KEY alert_rules_id (id),
	KEY alert_rules_enabled (enabled, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS fired_alerts (
	user_id VARCHAR(255) NOT NULL,
	id BIGINT NOT NULL,
	rule_id BIGINT NOT NULL,
	symbol VARCHAR(32) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	threshold DOUBLE NOT NULL,
	price DOUBLE NOT NULL,
	fired_at BIGINT NOT NULL,
	PRIMARY KEY (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
