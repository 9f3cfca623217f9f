-- Fulfillment: events for game servers (the outbox), each delivery try, and payments an
-- operator must look at.

-- Written in the same transaction as the order change it announces; the dispatcher delivers it.
CREATE TABLE outbox_events (
    event_id TEXT PRIMARY KEY,
    game_id TEXT NOT NULL REFERENCES games (id),
    order_no TEXT NOT NULL REFERENCES orders (order_no),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    -- Retries stop (dead letter) give_up_after_s after this; a re-delivery restarts it.
    window_started_at BIGINT NOT NULL,
    delivered_at BIGINT,
    -- When it was added to the Redis stream (when one is configured).
    streamed_at BIGINT
);
CREATE INDEX outbox_events_due ON outbox_events (status, next_attempt_at);
CREATE INDEX outbox_events_by_order ON outbox_events (order_no);
CREATE INDEX outbox_events_unstreamed ON outbox_events (streamed_at, created_at);

CREATE TABLE delivery_attempts (
    event_id TEXT NOT NULL REFERENCES outbox_events (event_id),
    attempt_no BIGINT NOT NULL,
    at BIGINT NOT NULL,
    http_status BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (event_id, attempt_no)
);

-- Payments Coffer refused to apply: another amount, a second payment of a paid order, an
-- order it does not know. Money may have moved: an operator settles each one.
CREATE TABLE payment_conflicts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    payment_ref TEXT NOT NULL,
    order_no TEXT,
    channel_txn_id TEXT,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    UNIQUE (kind, channel, payment_ref)
);

-- When the recovery job may next ask the channel about an attempt that has not settled.
ALTER TABLE payment_attempts ADD COLUMN next_query_at BIGINT;

-- Money given back. An amount is held from the moment the refund is recorded (pending), so
-- two refunds at once can never give back more than was paid.
CREATE TABLE refunds (
    refund_no TEXT PRIMARY KEY,
    order_no TEXT NOT NULL REFERENCES orders (order_no),
    channel TEXT NOT NULL,
    payment_ref TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    channel_refund_id TEXT,
    channel_status TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK (amount_minor > 0)
);
CREATE INDEX refunds_by_order ON refunds (order_no);
