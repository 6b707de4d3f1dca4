SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE accounts ALTER COLUMN plan DROP NOT NULL;
