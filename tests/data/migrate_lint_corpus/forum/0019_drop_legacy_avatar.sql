SET lock_timeout = '5s';
SET statement_timeout = '15min';


    -- vigil:ignore drop-column reason="no release reads legacy_avatar since 0.19" expires=2099-01-01
    ALTER TABLE person DROP COLUMN legacy_avatar;
