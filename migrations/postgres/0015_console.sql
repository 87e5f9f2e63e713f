-- The operator's console (issue 13).
--
-- Finished tasks of one owner by time: the console's per-interval series of
-- finishes by outcome, its per-kind counts of recent finishes and the bulk
-- retry by time range read a range of this index (index-only: status and
-- kind are included), never the whole table. Partial like
-- tasks_finished_idx, so a task enters it once, when it finishes: the hot
-- claim/heartbeat path never touches it. Every-owner reads (the admin role)
-- use tasks_finished_idx.
CREATE INDEX tasks_owner_finished_idx ON tasks (owner_id, finished_at) INCLUDE (status, kind)
    WHERE status IN ('succeeded', 'failed', 'cancelled');

-- The task list filtered by a rare status (GET /api/tasks?status=failed):
-- newest first within one owner on an index that holds only those rows, so
-- an owner with 700,000 tasks and a handful failed reads a handful of
-- entries instead of scanning all of theirs. Rows reach these statuses once
-- and rarely leave them: the hot path pays nothing. (queued and running use
-- the partial indexes of 0005; succeeded is most rows, found at once on
-- tasks_owner_created_idx.)
CREATE INDEX tasks_owner_failed_idx ON tasks (owner_id, created_at DESC, id DESC)
    WHERE status = 'failed';
CREATE INDEX tasks_owner_cancelled_idx ON tasks (owner_id, created_at DESC, id DESC)
    WHERE status = 'cancelled';
