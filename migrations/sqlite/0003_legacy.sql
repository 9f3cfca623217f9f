-- The legacy API (the old three-service system's routes). Its players are Coffer players of
-- the configured game; what the old client also keeps per player lives here.

-- legacy_id is the numeric `id` the old client was given; imported players keep theirs when
-- it is free. source_id is the id a player had in the old database (imported players only):
-- what makes an import idempotent without mistaking a newer account with the same pid for it.
CREATE TABLE legacy_profiles (
    legacy_id INTEGER PRIMARY KEY AUTOINCREMENT,
    player_id TEXT NOT NULL UNIQUE REFERENCES players (id),
    source_id BIGINT,
    level BIGINT NOT NULL,
    gold BIGINT NOT NULL,
    icon TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX legacy_profiles_by_source ON legacy_profiles (source_id);

-- Payment records as the old client lists them: uploaded by the client for an order Coffer saw
-- paid (coffer_order_no set), or imported from the old database (legacy_record_id set).
-- bill_no is the client's bill number (the old `order_no`).
CREATE TABLE legacy_payment_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bill_no TEXT NOT NULL UNIQUE,
    coffer_order_no TEXT UNIQUE REFERENCES orders (order_no),
    legacy_record_id BIGINT UNIQUE,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    amount TEXT NOT NULL,
    pay_time BIGINT NOT NULL,
    product_id TEXT,
    product_info TEXT,
    product_details TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX legacy_payment_records_by_user ON legacy_payment_records (user_id);
