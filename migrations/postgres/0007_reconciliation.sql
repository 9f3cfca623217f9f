-- Reconciliation: a channel's statement of one day, matched against what Coffer recorded.
-- One row per (channel, day) run, which is also the lease that keeps two instances from
-- reconciling the same day at once; the statement's lines as the plugin read them, each with
-- what it turned out to be; and the findings an operator reads. Running a day again replaces
-- its lines and findings. See docs/ledger.md.
CREATE TABLE reconciliations (
    channel TEXT NOT NULL,
    day TEXT NOT NULL,
    status TEXT NOT NULL,
    lines BIGINT NOT NULL DEFAULT 0,
    matched BIGINT NOT NULL DEFAULT 0,
    findings BIGINT NOT NULL DEFAULT 0,
    fees_minor BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (channel, day)
);

CREATE TABLE statement_lines (
    channel TEXT NOT NULL,
    day TEXT NOT NULL,
    line_no BIGINT NOT NULL,
    kind TEXT NOT NULL,
    order_no TEXT,
    channel_txn_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    fee_minor BIGINT,
    occurred_at BIGINT NOT NULL,
    channel_status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (channel, day, line_no)
);

CREATE TABLE reconciliation_findings (
    channel TEXT NOT NULL,
    day TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payment_ref TEXT,
    channel_txn_id TEXT,
    statement_minor BIGINT,
    local_minor BIGINT,
    currency TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (channel, day, seq)
);

-- The orders area publishes what reconciliation matches statements against.
CREATE VIEW attempt_directory AS
    SELECT a.channel, a.payment_ref, a.channel_txn_id, a.order_no, a.status, a.updated_at,
           o.game_id, o.amount_minor, o.currency, o.paid_at
    FROM payment_attempts a
    JOIN orders o ON o.order_no = a.order_no;

CREATE VIEW refund_directory AS
    SELECT refund_no, order_no, channel, payment_ref, amount_minor, currency, status, updated_at
    FROM refunds;
