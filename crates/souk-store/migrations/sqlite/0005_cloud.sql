-- Cloud apps: the external services the cloud gateway calls (cloud-gateway.md §1).
CREATE TABLE cloud_apps (
    cloud_app_id   TEXT    PRIMARY KEY,
    appid          TEXT    NOT NULL,
    app_key        TEXT    NOT NULL UNIQUE,
    secret         TEXT    NOT NULL,
    env            TEXT    NOT NULL,
    whitelist      TEXT    NOT NULL DEFAULT '[]',
    sign_method    TEXT    NOT NULL,
    disabled       INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at_ms  INTEGER NOT NULL
);
CREATE INDEX cloud_apps_appid ON cloud_apps (appid, cloud_app_id);
