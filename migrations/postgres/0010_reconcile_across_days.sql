-- A channel may list a payment or refund on the day before or after the one Coffer recorded
-- it on (midnight, clock skew, a late notification). Each stored line remembers which local
-- payment and refund it matched, so that the neighbouring days' runs can tell; a `short` or
-- `refund_not_at_channel` finding is resolved (not deleted) when a neighbouring day's
-- statement lists what it missed. Refund lines keep the refund number the channel echoes.
-- Those lookups go by (channel, day), the primary key's prefix: no index is added for them
-- (one would slow the storing of a 100,000-line statement for nothing).
ALTER TABLE statement_lines ADD COLUMN payment_ref TEXT;
ALTER TABLE statement_lines ADD COLUMN refund_no TEXT;
ALTER TABLE reconciliation_findings ADD COLUMN refund_no TEXT;
ALTER TABLE reconciliation_findings ADD COLUMN resolved_at BIGINT;
ALTER TABLE reconciliation_findings ADD COLUMN resolution TEXT;
