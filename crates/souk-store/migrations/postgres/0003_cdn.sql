-- CDN files: the metadata of uploaded files (the bytes are in the blob store under cdn/<xx>/<file_id>).

CREATE TABLE cdn_files (
    file_id       TEXT   NOT NULL PRIMARY KEY,
    appid         TEXT   NOT NULL,
    content_type  TEXT   NOT NULL,
    size          BIGINT NOT NULL CHECK (size >= 0),
    sha256        TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX cdn_files_expiry ON cdn_files (expires_at_ms, file_id);
