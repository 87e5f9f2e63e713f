-- Uploaded files: metadata here, bytes in blob storage under a generated
-- name (files/{id}/original), never a user-supplied path.
CREATE TABLE files (
    id           uuid        PRIMARY KEY,
    owner_id     text        NOT NULL,
    filename     text        NOT NULL,  -- a plain name for display, never a path
    content_type text        NOT NULL,  -- sniffed from the bytes, not the client's claim
    size         bigint      NOT NULL CHECK (size >= 0),
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner_created_idx ON files (owner_id, created_at DESC);
