-- Customer-service messages (souk-core `store::messages`) and reported payments (`store::payments`).

-- One row per (app, user) conversation: the last sequence number, the reply rules' state and typing.
CREATE TABLE conversations (
    appid               TEXT    NOT NULL,
    openid              TEXT    NOT NULL,
    last_seq            BIGINT  NOT NULL,
    last_in_at_ms       BIGINT,
    replies_since_in    BIGINT  NOT NULL DEFAULT 0,
    last_exchange_at_ms BIGINT  NOT NULL,
    typing_until_ms     BIGINT,
    PRIMARY KEY (appid, openid)
);

-- Every message, in order per conversation; a user's message is also its own push outbox row.
CREATE TABLE messages (
    msg_id          BIGINT  NOT NULL PRIMARY KEY,
    appid           TEXT    NOT NULL,
    openid          TEXT    NOT NULL,
    seq             BIGINT  NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    body            TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    push_state      TEXT    NOT NULL CHECK (push_state IN ('none', 'pending', 'delivered', 'failed')),
    push_attempts   BIGINT  NOT NULL DEFAULT 0,
    push_due_at_ms  BIGINT,
    push_last_error TEXT,
    UNIQUE (appid, openid, seq)
);
-- Claims look only at pending pushes, soonest due first.
CREATE INDEX messages_push_due ON messages (push_due_at_ms) WHERE push_state = 'pending';

-- Payments the operator's payment system reported (getPaidUnionId); one row per order.
CREATE TABLE payments (
    payment_id     TEXT    NOT NULL PRIMARY KEY,
    appid          TEXT    NOT NULL,
    openid         TEXT    NOT NULL,
    transaction_id TEXT    UNIQUE,
    mch_id         TEXT,
    out_trade_no   TEXT,
    amount         BIGINT,
    paid_at_ms     BIGINT  NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    UNIQUE (mch_id, out_trade_no)
);
