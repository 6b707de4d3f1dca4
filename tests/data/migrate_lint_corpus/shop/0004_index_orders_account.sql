-- vigil:no-transaction

    SET lock_timeout = '5s';
    CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_account_id_idx ON orders (account_id);
