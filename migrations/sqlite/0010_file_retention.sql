-- Mirrors migrations/postgres/0010_file_retention.sql.
CREATE INDEX files_created_idx ON files (created_at);
