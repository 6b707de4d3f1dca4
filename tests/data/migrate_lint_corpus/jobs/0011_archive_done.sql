SET lock_timeout = '5s';
SET statement_timeout = '15min';


    INSERT INTO jobs_archive SELECT * FROM jobs WHERE state = 'done';
    DELETE FROM jobs WHERE state = 'done';
