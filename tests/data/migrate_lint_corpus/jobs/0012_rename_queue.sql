SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER SEQUENCE jobs_id_seq RENAME TO job_ids;
    ALTER TABLE jobs RENAME TO job_queue;
