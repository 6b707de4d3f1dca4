ALTER TABLE reports DROP COLUMN author;
