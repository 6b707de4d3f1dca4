-- vigil:no-transaction
-- An index built without blocking writes to orders.
SET lock_timeout = '5s';
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at);
