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
