SET lock_timeout = '5s';
SET statement_timeout = '15min';


    ALTER TABLE comment ADD CONSTRAINT comment_post_id_fkey FOREIGN KEY (post_id) REFERENCES post (id);
