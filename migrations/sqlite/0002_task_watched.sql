-- Mirrors migrations/postgres/0002: the embedded store has no NOTIFY, so
-- streams poll; the column keeps the schemas alike.
ALTER TABLE tasks ADD COLUMN watched INTEGER NOT NULL DEFAULT 0;
