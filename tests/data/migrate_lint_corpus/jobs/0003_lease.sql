SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE jobs ADD COLUMN lease_owner text;
    CREATE INDEX CONCURRENTLY jobs_lease_owner_idx ON jobs (lease_owner);
