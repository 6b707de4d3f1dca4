-- Hostile pass (issue 14): statements that scan or rewrite live objects under lock, which vigil missed.
SET lock_timeout = '2s';
SET statement_timeout = '10min';
ALTER DOMAIN attempt_count ADD CONSTRAINT attempt_count_small CHECK (VALUE < 1000);
REFRESH MATERIALIZED VIEW job_totals;
ALTER TABLE job_queue SET UNLOGGED;
