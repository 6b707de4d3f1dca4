SET lock_timeout = '5s';
SET statement_timeout = '15min';


    -- vigil:ignore truncate reason="archive rebuilt nightly" expires=2020-01-31
    TRUNCATE jobs_archive;
