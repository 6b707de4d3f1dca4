-- a second migration with version 1: apply refuses the directory
CREATE INDEX reports_body_idx ON reports (body);
