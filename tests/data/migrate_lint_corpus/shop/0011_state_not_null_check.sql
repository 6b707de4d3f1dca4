SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE orders ADD CONSTRAINT orders_state_not_null CHECK (state IS NOT NULL) NOT VALID;
