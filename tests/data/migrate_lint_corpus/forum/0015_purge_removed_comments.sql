SET lock_timeout = '5s';
SET statement_timeout = '15min';


    DELETE FROM comment WHERE removed;
