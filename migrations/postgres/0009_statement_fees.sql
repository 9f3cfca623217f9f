-- The reconcile area publishes the fees of the statement lines it matched, which the ledger's
-- check requires to be posted (named `channel:day:line`).
CREATE VIEW matched_statement_fees AS
    SELECT channel, day, line_no, fee_minor, currency
    FROM statement_lines
    WHERE outcome = 'matched' AND fee_minor IS NOT NULL AND fee_minor <> 0;
