SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE post RENAME COLUMN name TO title;
