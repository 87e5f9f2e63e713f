-- Resume Agent: the task table, the single source of truth for every task.
--
-- Every status change is one conditional UPDATE on this table (see
-- crates/core/src/store/postgres.rs); the queue backends only ever carry ids.
-- Shipped migrations never change: add a new file instead.

CREATE TABLE tasks (
    id               uuid        PRIMARY KEY,          -- UUIDv7: time-ordered
    owner_id         text        NOT NULL,
    kind             text        NOT NULL,             -- fixed strings, e.g. 'system.noop'
    status           text        NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    payload          jsonb       NOT NULL,
    result           jsonb,
    error            text,
    attempts         integer     NOT NULL DEFAULT 0,   -- incremented by each claim
    max_attempts     integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 25),
    timeout_secs     integer     NOT NULL CHECK (timeout_secs BETWEEN 1 AND 3600),
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,                      -- start of the latest attempt
    finished_at      timestamptz,                      -- set with a terminal status
    run_after        timestamptz NOT NULL DEFAULT now(), -- not claimable before (retry backoff)
    dispatched_at    timestamptz NOT NULL DEFAULT now(), -- last hand-off to a backend
    lease_owner      text,                             -- worker id holding the running task
    lease_expires_at timestamptz,                      -- extended by heartbeat while running
    cancel_requested boolean     NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Listing: newest first within one owner, keyset-paginated on (created_at, id).
CREATE INDEX tasks_owner_created_idx ON tasks (owner_id, created_at DESC, id DESC);

-- Idempotency: one task per (owner, key).
CREATE UNIQUE INDEX tasks_owner_idempotency_idx ON tasks (owner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Recovery sweeper: queued tasks that are due and whose last hand-off is old.
-- Partial, so it only ever holds the (small) queued set: an index, not a scan.
CREATE INDEX tasks_queued_due_idx ON tasks (GREATEST(run_after, dispatched_at))
    WHERE status = 'queued';

-- Lease recovery: running tasks ordered by lease expiry.
CREATE INDEX tasks_running_lease_idx ON tasks (lease_expires_at)
    WHERE status = 'running';
