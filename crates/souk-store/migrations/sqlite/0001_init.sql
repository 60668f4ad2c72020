-- souk durable schema, SQLite flavour. Times are Unix milliseconds; booleans are 0/1; JSON is TEXT.

CREATE TABLE apps (
    appid           TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    app_type        TEXT    NOT NULL,
    secret_hash     TEXT    NOT NULL,
    open_account    TEXT,
    pages           TEXT    NOT NULL,
    theme_color     TEXT,
    message_url     TEXT,
    message_token   TEXT,
    allowed_origins TEXT    NOT NULL,
    rate_limit      TEXT,
    disabled        INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at_ms   BIGINT  NOT NULL
);

CREATE TABLE services (
    service_id    TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at_ms BIGINT  NOT NULL
);

CREATE TABLE apis (
    service_id    TEXT   NOT NULL REFERENCES services (service_id),
    name          TEXT   NOT NULL,
    upstream_url  TEXT   NOT NULL,
    mode          TEXT   NOT NULL,
    timeout_ms    BIGINT NOT NULL,
    schema        TEXT,
    price         BIGINT NOT NULL,
    rate_limit    TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (service_id, name)
);

CREATE TABLE packages (
    package_id    TEXT   NOT NULL PRIMARY KEY,
    appid         TEXT   NOT NULL,
    service_id    TEXT   NOT NULL,
    units         BIGINT NOT NULL,
    units_left    BIGINT NOT NULL CHECK (units_left >= 0),
    expires_at_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX packages_appid_service ON packages (appid, service_id);

CREATE TABLE tokens (
    token_hash    TEXT    NOT NULL PRIMARY KEY,
    appid         TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('plain', 'stable')),
    plaintext     TEXT,
    issued_at_ms  BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL,
    superseded    INTEGER NOT NULL CHECK (superseded IN (0, 1)),
    dies_at_ms    BIGINT
);
CREATE INDEX tokens_app_kind ON tokens (appid, kind, superseded, issued_at_ms);
CREATE INDEX tokens_expires ON tokens (expires_at_ms);

CREATE TABLE force_refresh (
    appid      TEXT   NOT NULL PRIMARY KEY,
    day        BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    last_at_ms BIGINT
);

CREATE TABLE idempotency (
    caller_appid  TEXT   NOT NULL,
    client_msg_id TEXT   NOT NULL,
    request_id    TEXT   NOT NULL,
    answer        TEXT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (caller_appid, client_msg_id)
);
CREATE INDEX idempotency_request ON idempotency (request_id);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

CREATE TABLE charges (
    request_id    TEXT   NOT NULL PRIMARY KEY,
    package_id    TEXT   NOT NULL,
    payer_appid   TEXT   NOT NULL,
    caller_appid  TEXT   NOT NULL,
    service_id    TEXT   NOT NULL,
    api           TEXT   NOT NULL,
    units         BIGINT NOT NULL,
    state         TEXT   NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    created_at_ms BIGINT NOT NULL,
    settled_at_ms BIGINT
);
CREATE INDEX charges_package ON charges (package_id, created_at_ms);
CREATE INDEX charges_state ON charges (state, created_at_ms);

CREATE TABLE calls (
    request_id TEXT    NOT NULL PRIMARY KEY,
    at_ms      BIGINT  NOT NULL,
    route      TEXT    NOT NULL,
    appid      TEXT,
    openid     TEXT,
    service_id TEXT,
    api        TEXT,
    errcode    BIGINT  NOT NULL,
    message    TEXT,
    latency_us BIGINT  NOT NULL,
    package_id TEXT,
    bytes_in   BIGINT  NOT NULL,
    bytes_out  BIGINT  NOT NULL,
    cache_hit  INTEGER NOT NULL CHECK (cache_hit IN (0, 1))
);
CREATE INDEX calls_at ON calls (at_ms, request_id);
CREATE INDEX calls_appid ON calls (appid, at_ms, request_id);
