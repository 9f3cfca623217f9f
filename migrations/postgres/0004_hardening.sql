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
