SET lock_timeout = '5s';
SET statement_timeout = '15min';


    CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger
        LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO audit_log (table_name, row_id, at) VALUES (TG_TABLE_NAME, NEW.id, now());
        RETURN NEW;
    END
    $$;
    DROP TRIGGER IF EXISTS accounts_audit ON accounts;
    CREATE TRIGGER accounts_audit AFTER INSERT OR UPDATE ON accounts
        FOR EACH ROW EXECUTE FUNCTION audit_row();
