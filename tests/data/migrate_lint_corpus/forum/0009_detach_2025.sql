SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE activity DETACH PARTITION activity_2025;
