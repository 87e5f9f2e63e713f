-- Live task progress (GET /api/tasks/{id}/events): a NOTIFY on channel
-- 'task_status' (payload: the task id) whenever a *watched* task changes
-- status. Only tasks somebody streams are flagged `watched`, so the hot path
-- (thousands of claims and completions per second) pays nothing but the
-- trigger's WHEN test: NOTIFY serialises commits on a global lock.

ALTER TABLE tasks ADD COLUMN watched boolean NOT NULL DEFAULT false;

CREATE FUNCTION tasks_notify_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('task_status', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_status_notify
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (NEW.watched AND NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION tasks_notify_status();
