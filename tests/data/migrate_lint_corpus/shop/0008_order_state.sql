SET lock_timeout = '5s';
SET statement_timeout = '15min';


    CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped');
    ALTER TABLE orders ADD COLUMN state order_state;
