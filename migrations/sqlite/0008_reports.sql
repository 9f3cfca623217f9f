-- What reports read: the orders area publishes what revenue and payment reports group by (each
-- order's SKU and region, each attempt's timing), the ledger its postings.
CREATE VIEW order_facts AS
    SELECT order_no, game_id, sku_code, region, currency, created_at, paid_at
    FROM orders;

CREATE VIEW attempt_timings AS
    SELECT a.channel, a.status, a.created_at, a.updated_at, o.game_id, o.currency
    FROM payment_attempts a
    JOIN orders o ON o.order_no = a.order_no;

-- The ledger publishes its postings for reports to read (never to write).
CREATE VIEW ledger_postings AS
    SELECT kind, side, account, game_id, currency, amount_minor, order_no, created_at
    FROM ledger_entries;
