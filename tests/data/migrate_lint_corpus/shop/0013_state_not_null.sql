SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE orders ALTER COLUMN state SET NOT NULL;
    ALTER TABLE orders DROP CONSTRAINT orders_state_not_null;
