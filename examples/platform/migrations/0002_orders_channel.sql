-- Expand: a nullable column the old app ignores; the new app starts writing it.
SET lock_timeout = '5s';
ALTER TABLE orders ADD COLUMN channel text;
