-- Games, players, catalog and orders. Times are Unix milliseconds; money is an integer count
-- of minor units next to its ISO 4217 currency.
-- SQLite: flags are INTEGER 0/1 (sqlx's Any driver cannot read SQLite's BOOLEAN); see store::flag.

CREATE TABLE games (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    default_region TEXT NOT NULL,
    delivery_url TEXT NOT NULL,
    delivery_secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Game-server API keys. A rotated key keeps working until expires_at.
CREATE TABLE game_api_keys (
    key_id TEXT PRIMARY KEY,
    game_id TEXT NOT NULL REFERENCES games (id),
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX game_api_keys_by_game ON game_api_keys (game_id);

CREATE TABLE players (
    id TEXT PRIMARY KEY,
    game_id TEXT NOT NULL REFERENCES games (id),
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (game_id, username)
);

-- Session tokens are stored as SHA-256 digests only.
CREATE TABLE player_sessions (
    token_sha256 TEXT PRIMARY KEY,
    player_id TEXT NOT NULL REFERENCES players (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX player_sessions_by_player ON player_sessions (player_id);

CREATE TABLE skus (
    game_id TEXT NOT NULL REFERENCES games (id),
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    grants TEXT NOT NULL,
    prices TEXT NOT NULL,
    period_days BIGINT,
    stock_total BIGINT,
    stock_reserved BIGINT NOT NULL DEFAULT 0,
    per_player_limit BIGINT,
    sale_starts_at BIGINT,
    sale_ends_at BIGINT,
    enabled INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (game_id, code),
    CHECK (stock_reserved >= 0),
    CHECK (stock_total IS NULL OR stock_reserved <= stock_total)
);

-- How many orders each player holds per SKU, for purchase limits.
CREATE TABLE purchase_counts (
    player_id TEXT NOT NULL REFERENCES players (id),
    game_id TEXT NOT NULL,
    sku_code TEXT NOT NULL,
    purchases BIGINT NOT NULL,
    PRIMARY KEY (player_id, game_id, sku_code),
    CHECK (purchases >= 0)
);

CREATE TABLE orders (
    order_no TEXT PRIMARY KEY,
    game_id TEXT NOT NULL REFERENCES games (id),
    player_id TEXT NOT NULL REFERENCES players (id),
    merchant_order_no TEXT NOT NULL,
    sku_code TEXT NOT NULL,
    region TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    subject TEXT NOT NULL,
    grants TEXT NOT NULL,
    status TEXT NOT NULL,
    holds_stock INTEGER NOT NULL,
    client_ip TEXT NOT NULL,
    device TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    paid_at BIGINT,
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (game_id, merchant_order_no),
    CHECK (amount_minor > 0)
);
CREATE INDEX orders_by_game ON orders (game_id, order_no);
CREATE INDEX orders_by_status ON orders (status, created_at);
CREATE INDEX orders_by_player ON orders (player_id, order_no);

-- Every state change of an order, for operators and audits.
CREATE TABLE order_transitions (
    order_no TEXT NOT NULL REFERENCES orders (order_no),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX order_transitions_by_order ON order_transitions (order_no);

-- One row per try at paying an order through a channel. payment_ref is the merchant order id
-- the channel sees: the order number for the first attempt, a suffixed one for later attempts
-- (channels refuse to reuse a merchant order id, even after a decline).
CREATE TABLE payment_attempts (
    order_no TEXT NOT NULL REFERENCES orders (order_no),
    attempt_no BIGINT NOT NULL,
    payment_ref TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    method TEXT NOT NULL,
    flow TEXT NOT NULL,
    status TEXT NOT NULL,
    channel_txn_id TEXT,
    channel_status TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    next_action TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (order_no, attempt_no)
);

-- Stored answers to requests that carried an Idempotency-Key.
CREATE TABLE idempotency_keys (
    game_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    response_status BIGINT,
    response_body TEXT,
    created_at BIGINT NOT NULL,
    locked_at BIGINT NOT NULL,
    PRIMARY KEY (game_id, idempotency_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
