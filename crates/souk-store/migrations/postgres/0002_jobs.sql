-- Async long tasks (souk-core `store::jobs`), PostgreSQL flavour. A job's units are the `charges` row
-- with the same request_id: reserved at submission, settled in the transaction that finishes the job.

CREATE TABLE jobs (
    request_id     TEXT    NOT NULL PRIMARY KEY,
    appid          TEXT    NOT NULL,
    payer_appid    TEXT    NOT NULL,
    openid         TEXT,
    service_id     TEXT    NOT NULL,
    api            TEXT    NOT NULL,
    package_id     TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'waiting', 'succeeded', 'failed')),
    attempts       BIGINT  NOT NULL CHECK (attempts >= 0),
    due_at_ms      BIGINT  NOT NULL,
    lease_owner    TEXT,
    lease_until_ms BIGINT,
    deadline_ms    BIGINT  NOT NULL,
    last_error     TEXT,
    result         TEXT,
    created_at_ms  BIGINT  NOT NULL,
    finished_at_ms BIGINT
);
-- Claims look only at unfinished jobs, soonest due first.
CREATE INDEX jobs_due ON jobs (due_at_ms) WHERE state IN ('pending', 'waiting');
CREATE INDEX jobs_created ON jobs (created_at_ms, request_id);
CREATE INDEX jobs_appid ON jobs (appid, created_at_ms, request_id);
CREATE INDEX jobs_finished ON jobs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
