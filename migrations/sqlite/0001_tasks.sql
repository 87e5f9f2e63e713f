-- Resume Agent embedded store (SQLite): the same task table as
-- migrations/postgres/0001_tasks.sql. Timestamps are INTEGER microseconds
-- since the Unix epoch (comparable, exact); ids are UUID text; JSON is text.

CREATE TABLE tasks (
    id               TEXT    PRIMARY KEY,
    owner_id         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    payload          TEXT    NOT NULL,
    result           TEXT,
    error            TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
    timeout_secs     INTEGER NOT NULL CHECK (timeout_secs BETWEEN 1 AND 3600),
    idempotency_key  TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    run_after        INTEGER NOT NULL,
    dispatched_at    INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX tasks_owner_created_idx ON tasks (owner_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX tasks_owner_idempotency_idx ON tasks (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_queued_due_idx ON tasks (max(run_after, dispatched_at))
    WHERE status = 'queued';
CREATE INDEX tasks_running_lease_idx ON tasks (lease_expires_at)
    WHERE status = 'running';
