SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE community ADD CONSTRAINT community_name_key UNIQUE (name);
