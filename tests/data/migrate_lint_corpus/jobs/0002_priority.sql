SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE jobs ADD COLUMN priority smallint NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN payload_v1 text;
