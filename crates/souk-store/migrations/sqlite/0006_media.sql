-- Temporary media (`/cgi-bin/media/upload`, `/cgi-bin/media/get`): the metadata of uploaded media (the
-- bytes are in the blob store under media/<xx>/<media_id>), kept 3 days.

CREATE TABLE media (
    media_id      TEXT   NOT NULL PRIMARY KEY,
    appid         TEXT   NOT NULL,
    media_type    TEXT   NOT NULL,
    content_type  TEXT   NOT NULL,
    size          BIGINT NOT NULL CHECK (size >= 0),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX media_expiry ON media (expires_at_ms, media_id);
