-- Mirrors migrations/postgres/0015_console.sql (SQLite has no INCLUDE: the
-- columns are part of the key, which covers the same reads).
CREATE INDEX tasks_owner_finished_idx ON tasks (owner_id, finished_at, status, kind)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX tasks_owner_failed_idx ON tasks (owner_id, created_at DESC, id DESC)
    WHERE status = 'failed';
CREATE INDEX tasks_owner_cancelled_idx ON tasks (owner_id, created_at DESC, id DESC)
    WHERE status = 'cancelled';
