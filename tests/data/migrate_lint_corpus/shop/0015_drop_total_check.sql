SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE orders DROP CONSTRAINT orders_total_cents_check;
