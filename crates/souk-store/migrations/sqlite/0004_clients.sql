-- End users, client sessions and grants (the client API).
CREATE TABLE end_users (
    appid          TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    openid         TEXT    NOT NULL,
    nick           TEXT,
    scopes         TEXT    NOT NULL DEFAULT '[]',
    created_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (appid, user_id)
);
CREATE UNIQUE INDEX end_users_openid ON end_users (appid, openid);

CREATE TABLE unionids (
    open_account   TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    unionid        TEXT NOT NULL,
    PRIMARY KEY (open_account, user_id)
);

CREATE TABLE client_sessions (
    session_hash   TEXT    PRIMARY KEY,
    appid          TEXT    NOT NULL,
    openid         TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    plugin_appid   TEXT,
    created_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL
);
CREATE INDEX client_sessions_appid ON client_sessions (appid);
CREATE INDEX client_sessions_expiry ON client_sessions (expires_at_ms);

CREATE TABLE grants (
    payer_appid    TEXT    NOT NULL,
    caller_appid   TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (payer_appid, caller_appid)
);

ALTER TABLE calls ADD COLUMN plugin_appid TEXT;
