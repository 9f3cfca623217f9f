-- App store purchases. A SKU may be sold in a store under the store's own product id, one per
-- game and channel: the proof a game server sends names the store's product, the catalog
-- tells which SKU it is.
CREATE TABLE store_products (
    game_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    product_id TEXT NOT NULL,
    sku_code TEXT NOT NULL,
    PRIMARY KEY (game_id, channel, product_id)
);
CREATE INDEX store_products_by_sku ON store_products (game_id, sku_code);
-- The SKU's own copy, read with the rest of its spec.
ALTER TABLE skus ADD COLUMN store_products TEXT NOT NULL DEFAULT '[]';

-- Every store transaction Coffer turned into an order, keyed by the store's own id: the same
-- proof sent again, by anyone, for any player, finds this row and never makes a second order.
-- The row is written in the transaction that writes the order.
CREATE TABLE store_purchases (
    channel TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    order_no TEXT NOT NULL,
    game_id TEXT NOT NULL,
    original_transaction_id TEXT NOT NULL,
    -- What looks the purchase up again or acknowledges it (Google's purchase token).
    token TEXT NOT NULL,
    product_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    purchased_at BIGINT NOT NULL,
    expires_at BIGINT,
    -- Set once the store took the acknowledgement, for stores that want one.
    needs_acknowledgement INTEGER NOT NULL,
    acknowledged_at BIGINT,
    revoked_at BIGINT,
    -- Set when the store said the subscription this purchase paid for ended (told the game once).
    expired_at BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, transaction_id)
);
CREATE UNIQUE INDEX store_purchases_by_order ON store_purchases (order_no);
CREATE INDEX store_purchases_by_token ON store_purchases (channel, token);
