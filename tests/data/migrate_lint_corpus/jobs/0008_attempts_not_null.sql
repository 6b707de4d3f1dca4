SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE jobs ALTER COLUMN lease_owner SET NOT NULL;
