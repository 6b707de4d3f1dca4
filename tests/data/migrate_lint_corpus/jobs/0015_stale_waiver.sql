SET lock_timeout = '5s';
SET statement_timeout = '15min';


    -- vigil:ignore drop-table reason="nothing is dropped here any more" expires=2099-01-01
    ALTER TABLE job_queue ADD COLUMN note text;
