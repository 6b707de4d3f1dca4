BEGIN;
UPDATE person SET avatar = NULL WHERE avatar = '';
COMMIT;
