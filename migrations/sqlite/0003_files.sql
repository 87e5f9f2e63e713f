-- Mirrors migrations/postgres/0003_files.sql (timestamps in microseconds).
CREATE TABLE files (
    id           TEXT    PRIMARY KEY,
    owner_id     TEXT    NOT NULL,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX files_owner_created_idx ON files (owner_id, created_at DESC);
