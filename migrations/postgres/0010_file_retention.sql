-- File retention (FILE_RETENTION_DAYS): the sweep deletes the oldest files
-- first, across owners, so it needs created_at on its own
-- (files_owner_created_idx leads with owner_id). Per-owner quotas sum
-- `size` over files_owner_created_idx and count queued tasks on
-- tasks_queued_owner_idx (0005): no further index needed for them.
CREATE INDEX files_created_idx ON files (created_at);
