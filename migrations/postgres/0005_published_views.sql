-- What an area publishes for other areas to read. Each table belongs to one area, which alone
-- names it in its SQL (docs/architecture.md); another area that must read across (a listing
-- joined with its own rows) reads the owner's view, which the owner keeps stable while its
-- tables change.

-- The players area: who a player is, never their credentials.
CREATE VIEW player_directory AS
    SELECT id, game_id, username, display_name, created_at
    FROM players;

-- The orders area: the orders that were paid (refunded ones included).
CREATE VIEW paid_orders AS
    SELECT order_no, game_id, player_id, merchant_order_no, amount_minor, currency, sku_code,
           subject, paid_at, created_at
    FROM orders
    WHERE paid_at IS NOT NULL;
