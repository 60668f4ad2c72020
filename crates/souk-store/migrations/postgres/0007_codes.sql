-- Mini-program codes: every code an app made, under the short id its URL names. `counted` codes
-- (createwxaqrcode, getwxacode) count against the app's lifetime limit (45029); identical parameters
-- (same `params_hash`) are one code, counted once.

CREATE TABLE codes (
    code_id       TEXT    NOT NULL PRIMARY KEY,
    appid         TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    params_hash   TEXT    NOT NULL,
    counted       BOOLEAN NOT NULL,
    path          TEXT,
    page          TEXT,
    scene         TEXT,
    env_version   TEXT,
    created_at_ms BIGINT  NOT NULL,
    UNIQUE (appid, params_hash)
);
CREATE INDEX codes_counted ON codes (appid, counted);
