SET lock_timeout = '5s';
SET statement_timeout = '15min';


    -- channel is NOT NULL (0002): the running app's INSERTs without it start failing
    ALTER TABLE orders ALTER COLUMN channel DROP DEFAULT;
    -- note is nullable and has no default anyway: nothing breaks
    ALTER TABLE orders ALTER COLUMN note DROP DEFAULT;
