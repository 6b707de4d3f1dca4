-- vigil:no-transaction

    SET lock_timeout = '5s';
    SET statement_timeout = '15min';
    CREATE INDEX CONCURRENTLY jobs_queue_state_idx ON jobs (queue, state);
    ALTER TABLE jobs ADD COLUMN lease_expires_at timestamptz;
