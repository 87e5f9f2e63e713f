-- Azure workers claim straight from the store the due queued tasks that were
-- handed to another backend (a flip: in-process or postgres → azure-queue).
-- This partial index holds exactly those rows, so the query that looks for
-- them every poll costs nothing when there are none, however long the Azure
-- backlog is.
CREATE INDEX tasks_queued_foreign_idx ON tasks (run_after)
    WHERE status = 'queued' AND backend IS DISTINCT FROM 'azure-queue';
