SET lock_timeout = '5s';
SET statement_timeout = '15min';


    CREATE TABLE post_aggregates (
        post_id int PRIMARY KEY REFERENCES post ON UPDATE CASCADE ON DELETE CASCADE,
        comments bigint NOT NULL DEFAULT 0,
        score bigint NOT NULL DEFAULT 0
    );
    INSERT INTO post_aggregates (post_id, comments)
    SELECT p.id, count(c.id) FROM post p LEFT JOIN comment c ON c.post_id = p.id GROUP BY p.id;

    CREATE FUNCTION post_aggregates_comment_count() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE post_aggregates SET comments = comments + 1 WHERE post_id = NEW.post_id;
        RETURN NULL;
    END $$;
    CREATE TRIGGER post_aggregates_comment_count AFTER INSERT ON comment
        FOR EACH ROW EXECUTE PROCEDURE post_aggregates_comment_count();
