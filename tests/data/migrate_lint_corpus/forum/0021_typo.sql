SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE post ADD COLUMN nsfw boolean NOT NULL DEFAULT false;
    ALTER TABEL community ADD COLUMN nsfw boolean NOT NULL DEFAULT false;
    CREATE INDEX post_nsfw_idx ON post (nsfw);
