VACUUM (ANALYZE) job_queue;
