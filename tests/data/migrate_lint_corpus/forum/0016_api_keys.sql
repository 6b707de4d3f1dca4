SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE person ADD COLUMN api_key uuid NOT NULL DEFAULT gen_random_uuid();
