-- The ledger: double-entry books of every money movement Coffer knows, per game and currency.
-- A transfer is two entries, a debit and a credit of the same amount, currency and game, named
-- by what caused it (kind) and that cause's own id (upstream_id): posting it again is a no-op.
-- Entries are never updated or deleted; a correction is a new transfer. game_id is '' for money
-- no game can be told of (a payment Coffer has no order for). See docs/ledger.md.
CREATE TABLE ledger_entries (
    kind TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    side TEXT NOT NULL,
    game_id TEXT NOT NULL,
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    order_no TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, upstream_id, side),
    CHECK (side IN ('debit', 'credit')),
    CHECK (amount_minor > 0)
);
CREATE INDEX ledger_entries_by_order ON ledger_entries (order_no);

-- The orders area publishes what the ledger's check compares the books with.
CREATE VIEW paid_attempts AS
    SELECT order_no, channel, payment_ref
    FROM payment_attempts
    WHERE status = 'paid';

CREATE VIEW succeeded_refunds AS
    SELECT refund_no, order_no, channel, amount_minor, currency
    FROM refunds
    WHERE status = 'succeeded';

-- Opening the books of a database that has taken payments already: each paid order's first
-- paid attempt as its payment, any later paid attempt of it as money in suspense (the player
-- paid twice), and each succeeded refund. Conflicts of other kinds kept no amount, so they are
-- left to the operator who resolves them.
INSERT INTO ledger_entries
    (kind, upstream_id, side, game_id, account, currency, amount_minor, order_no, created_at)
SELECT 'payment', a.channel || ':' || a.payment_ref, legs.side, o.game_id,
       CASE legs.side WHEN 'debit' THEN 'clearing:' || a.channel ELSE 'revenue' END,
       o.currency, o.amount_minor, o.order_no, COALESCE(o.paid_at, a.updated_at)
FROM orders o
JOIN payment_attempts a ON a.order_no = o.order_no AND a.status = 'paid'
CROSS JOIN (SELECT 'debit' AS side UNION ALL SELECT 'credit' AS side) legs
WHERE o.paid_at IS NOT NULL
  AND a.attempt_no = (SELECT MIN(b.attempt_no) FROM payment_attempts b
                      WHERE b.order_no = o.order_no AND b.status = 'paid');

INSERT INTO ledger_entries
    (kind, upstream_id, side, game_id, account, currency, amount_minor, order_no, created_at)
SELECT 'suspense:paid_twice', a.channel || ':' || a.payment_ref, legs.side, o.game_id,
       CASE legs.side WHEN 'debit' THEN 'clearing:' || a.channel ELSE 'suspense' END,
       o.currency, o.amount_minor, o.order_no, a.updated_at
FROM orders o
JOIN payment_attempts a ON a.order_no = o.order_no AND a.status = 'paid'
CROSS JOIN (SELECT 'debit' AS side UNION ALL SELECT 'credit' AS side) legs
WHERE a.attempt_no > (SELECT MIN(b.attempt_no) FROM payment_attempts b
                      WHERE b.order_no = o.order_no AND b.status = 'paid');

INSERT INTO ledger_entries
    (kind, upstream_id, side, game_id, account, currency, amount_minor, order_no, created_at)
SELECT 'refund', r.refund_no, legs.side, o.game_id,
       CASE legs.side WHEN 'debit' THEN 'refunds' ELSE 'clearing:' || r.channel END,
       r.currency, r.amount_minor, r.order_no, r.updated_at
FROM refunds r
JOIN orders o ON o.order_no = r.order_no
CROSS JOIN (SELECT 'debit' AS side UNION ALL SELECT 'credit' AS side) legs
WHERE r.status = 'succeeded';
