CREATE TYPE listing_type AS ENUM ('all', 'subscribed', 'community');

CREATE TABLE person (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL UNIQUE,
    avatar text,
    legacy_avatar text,
    published timestamp NOT NULL DEFAULT now()
);

CREATE TABLE community (
    id serial PRIMARY KEY,
    name varchar(20) NOT NULL,
    title varchar(100) NOT NULL,
    creator_id int NOT NULL REFERENCES person ON UPDATE CASCADE ON DELETE CASCADE,
    published timestamp NOT NULL DEFAULT now()
);

CREATE TABLE post (
    id serial PRIMARY KEY,
    name varchar(100) NOT NULL,
    url text,
    body text,
    creator_id int NOT NULL REFERENCES person ON UPDATE CASCADE ON DELETE CASCADE,
    community_id int NOT NULL REFERENCES community ON UPDATE CASCADE ON DELETE CASCADE,
    removed boolean NOT NULL DEFAULT false,
    published timestamp NOT NULL DEFAULT now()
);

CREATE TABLE comment (
    id serial PRIMARY KEY,
    creator_id int NOT NULL REFERENCES person ON UPDATE CASCADE ON DELETE CASCADE,
    post_id int NOT NULL,
    parent_id int REFERENCES comment ON UPDATE CASCADE ON DELETE CASCADE,
    content varchar(10000) NOT NULL,
    removed boolean NOT NULL DEFAULT false,
    published timestamp NOT NULL DEFAULT now()
);

CREATE TABLE site (
    id serial PRIMARY KEY,
    name varchar(20) NOT NULL UNIQUE,
    actor_id text NOT NULL
);

CREATE TABLE local_site (
    id serial PRIMARY KEY,
    site_id int NOT NULL UNIQUE REFERENCES site ON DELETE CASCADE,
    theme text NOT NULL DEFAULT 'browser',
    default_listing listing_type NOT NULL DEFAULT 'all'
);
INSERT INTO site (name, actor_id) VALUES ('forum', 'https://forum.example/');
INSERT INTO local_site (site_id) SELECT id FROM site ORDER BY id LIMIT 1;
