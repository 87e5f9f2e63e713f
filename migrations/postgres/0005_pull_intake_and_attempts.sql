-- Pull-based intake, per-owner fairness and attempt history.
--
-- Workers claim due queued tasks straight from this table (FOR UPDATE SKIP
-- LOCKED), interleaving owners: the loose index scan over owners and the
-- per-owner pick both run on tasks_queued_owner_idx; the per-owner running
-- cap (OWNER_MAX_RUNNING) counts on tasks_running_owner_idx.
--
-- `backend` records which backend a task was last handed to ('in-process',
-- 'postgres', 'azure-queue'; NULL for rows older than this migration), so a
-- worker of another backend can take such tasks over at once after a flip.

ALTER TABLE tasks ADD COLUMN backend text;

CREATE INDEX tasks_queued_owner_idx ON tasks (owner_id, run_after)
    WHERE status = 'queued';
CREATE INDEX tasks_running_owner_idx ON tasks (owner_id)
    WHERE status = 'running';

-- One row per finished attempt, written by the worker in the same statement
-- that records the outcome (and by lease recovery for an attempt whose worker
-- died). The attempt in progress is the task row itself (started_at,
-- lease_owner). A retried task keeps its history: `attempt` numbers restart
-- with the fresh budget, `id` orders them.
CREATE TABLE task_attempts (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id     uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    worker      text,
    started_at  timestamptz,
    finished_at timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL CHECK (outcome IN
                    ('succeeded', 'failed', 'retried', 'cancelled', 'handed_back', 'lease_expired')),
    error       text
);
CREATE INDEX task_attempts_task_idx ON task_attempts (task_id, id);
