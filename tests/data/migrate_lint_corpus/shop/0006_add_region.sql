SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE accounts ADD COLUMN region text;
    UPDATE accounts SET region = 'eu' WHERE region IS NULL;
