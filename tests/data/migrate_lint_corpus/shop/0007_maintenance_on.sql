-- the settings table holds one row: this is not a backfill
UPDATE settings SET maintenance = true;
