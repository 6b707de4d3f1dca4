SET lock_timeout = '5s';
SET statement_timeout = '15min';


    DROP INDEX jobs_run_at_idx;
