SET lock_timeout = '5s';
SET statement_timeout = '15min';


    CREATE TABLE queue_settings (queue text PRIMARY KEY, max_attempts int NOT NULL DEFAULT 5);
    MERGE INTO queue_settings s USING (SELECT DISTINCT queue FROM job_queue) q ON s.queue = q.queue
    WHEN NOT MATCHED THEN INSERT (queue) VALUES (q.queue);
