-- Hostile pass (issue 14): a domain with a constraint (squawk: ban-create-domain-with-constraint)
-- and a materialized view, changed by the next migration.
CREATE DOMAIN attempt_count AS int CHECK (VALUE >= 0);
CREATE MATERIALIZED VIEW job_totals AS SELECT queue, count(*) AS n FROM job_queue GROUP BY queue;
