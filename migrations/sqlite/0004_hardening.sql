-- Signatures of game-server requests that can change something (every method but GET and
-- HEAD), kept while they could still verify (their timestamp +/- 300 s): the same signed bytes
-- are accepted once. idempotency_key is the key the request carried, so that a retry of the
-- very same bytes can still be answered from the idempotency record.
CREATE TABLE used_signatures (
    key_id TEXT NOT NULL,
    mac TEXT NOT NULL,
    idempotency_key TEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, mac)
);
CREATE INDEX used_signatures_by_expiry ON used_signatures (expires_at);

-- Refunds made at the channel (the merchant's console) rather than asked for by Coffer:
-- origin 'channel', with the channel's own number for the refund, so that a notification about
-- one that is told twice records it once.
ALTER TABLE refunds ADD COLUMN origin TEXT NOT NULL DEFAULT 'coffer';
ALTER TABLE refunds ADD COLUMN channel_refund_no TEXT;
CREATE UNIQUE INDEX refunds_by_channel_refund_no ON refunds (channel, payment_ref, channel_refund_no);

-- The Coffer processes sharing this database, each with a heartbeat. host_key names where one
-- runs (host and listen address): a process that starts there again replaces the one before,
-- which is gone. Work a dead instance held (an idempotency key mid-request) is taken over at
-- once instead of after a timeout.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host_key TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE INDEX instances_by_host_key ON instances (host_key);
ALTER TABLE idempotency_keys ADD COLUMN instance_id TEXT;

-- How long an order's order.paid event waits after the payment before it is delivered (or
-- streamed): a legacy bill paid without a session waits for its player to claim it, so that
-- the game server is told whose it is. hold_until is when a held event becomes deliverable.
ALTER TABLE orders ADD COLUMN delivery_hold_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox_events ADD COLUMN hold_until BIGINT NOT NULL DEFAULT 0;
