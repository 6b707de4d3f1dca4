SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE jobs ADD COLUMN tenant_id bigint NOT NULL;
