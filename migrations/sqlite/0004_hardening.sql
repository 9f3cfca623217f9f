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
