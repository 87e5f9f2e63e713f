-- Mirrors migrations/postgres/0005_pull_intake_and_attempts.sql.
ALTER TABLE tasks ADD COLUMN backend TEXT;

CREATE INDEX tasks_queued_owner_idx ON tasks (owner_id, run_after)
    WHERE status = 'queued';
CREATE INDEX tasks_running_owner_idx ON tasks (owner_id)
    WHERE status = 'running';

CREATE TABLE task_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    worker      TEXT,
    started_at  INTEGER,
    finished_at INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN
                    ('succeeded', 'failed', 'retried', 'cancelled', 'handed_back', 'lease_expired')),
    error       TEXT
) STRICT;
CREATE INDEX task_attempts_task_idx ON task_attempts (task_id, id);
