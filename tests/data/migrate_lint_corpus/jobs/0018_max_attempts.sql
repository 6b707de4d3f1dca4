SET lock_timeout = '5s';
SET statement_timeout = '15min';


    MERGE INTO queue_settings s USING (VALUES ('mail', 10)) v (queue, n) ON s.queue = v.queue
    WHEN MATCHED THEN UPDATE SET max_attempts = v.n;
    ALTER TABLE queue_settings ALTER COLUMN max_attempts DROP DEFAULT;
