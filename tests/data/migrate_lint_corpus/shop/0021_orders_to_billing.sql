SET lock_timeout = '5s';
SET statement_timeout = '15min';


    CREATE SCHEMA IF NOT EXISTS billing;
    ALTER TABLE orders SET SCHEMA billing;
