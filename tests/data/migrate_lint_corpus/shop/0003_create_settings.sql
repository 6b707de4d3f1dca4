-- One row of app-wide settings, enforced by the CHECK on the key.
CREATE TABLE settings (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    maintenance boolean NOT NULL DEFAULT false,
    support_email text
);
INSERT INTO settings DEFAULT VALUES;
