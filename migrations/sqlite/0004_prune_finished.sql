-- Mirrors migrations/postgres/0004_prune_finished.sql.
CREATE INDEX tasks_finished_idx ON tasks (finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
