SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE orders VALIDATE CONSTRAINT orders_state_not_null;
