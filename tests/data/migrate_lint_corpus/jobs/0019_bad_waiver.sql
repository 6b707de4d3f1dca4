SET lock_timeout = '5s';
SET statement_timeout = '15min';


    -- vigil:ignore drop-column reason="payload_v2 unused"
    ALTER TABLE job_queue DROP COLUMN IF EXISTS payload_v2;
