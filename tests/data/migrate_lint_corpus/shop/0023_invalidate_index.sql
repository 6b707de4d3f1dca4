-- a catalog edit some projects do by hand; not a backfill
UPDATE pg_catalog.pg_index SET indisvalid = false
WHERE indexrelid = 'orders_status_idx'::regclass;
