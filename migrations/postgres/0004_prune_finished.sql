-- Retention: finished tasks older than TASK_RETENTION_DAYS are deleted by the
-- worker's sweeper in small batches, oldest first, through this partial
-- index (only terminal rows, ordered by when they finished).
CREATE INDEX tasks_finished_idx ON tasks (finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
