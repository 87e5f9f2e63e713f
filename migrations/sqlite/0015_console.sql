-- Mirrors migrations/postgres/0015_console.sql (SQLite has no INCLUDE: the
-- columns are part of the key, which covers the same reads).
CREATE INDEX tasks_owner_finished_idx ON tasks (owner_id, finished_at, status, kind)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
