SET lock_timeout = '5s';
SET statement_timeout = '15min';


    DROP TABLE activity_2025;
