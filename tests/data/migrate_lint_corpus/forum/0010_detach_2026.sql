-- vigil:no-transaction

    SET lock_timeout = '5s';
    ALTER TABLE activity DETACH PARTITION activity_2026 CONCURRENTLY;
