SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE job_queue DROP COLUMN payload_v1;
