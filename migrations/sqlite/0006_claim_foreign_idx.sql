-- Mirrors migrations/postgres/0006_claim_foreign_idx.sql.
CREATE INDEX tasks_queued_foreign_idx ON tasks (run_after)
    WHERE status = 'queued' AND backend IS NOT 'azure-queue';
