CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    payload jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts int NOT NULL DEFAULT 0
);
CREATE INDEX jobs_run_at_idx ON jobs (run_at) WHERE state = 'pending';
CREATE TABLE jobs_archive (LIKE jobs INCLUDING ALL);
