SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE jobs ADD COLUMN shard int DEFAULT next_shard();
    ALTER TABLE jobs ADD COLUMN created_at timestamp DEFAULT now();
