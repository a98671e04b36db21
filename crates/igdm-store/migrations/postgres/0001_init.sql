-- igdm local store, PostgreSQL dialect. Times are Unix microseconds (BIGINT),
-- JSON is JSONB, raw bodies BYTEA. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE accounts (
    account_id  TEXT PRIMARY KEY NOT NULL,
    connector   TEXT NOT NULL,
    backend     TEXT NOT NULL,
    user_id     TEXT,
    username    TEXT,
    base_url    TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    account_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    username            TEXT,
    display_name        TEXT,
    profile_picture_url TEXT,
    follows_account     BOOLEAN,
    followed_by_account BOOLEAN,
    is_verified         BOOLEAN,
    follower_count      BIGINT,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

CREATE TABLE conversations (
    account_id           TEXT NOT NULL,
    conversation_id      TEXT NOT NULL,
    kind                 TEXT NOT NULL DEFAULT 'direct',
    title                TEXT,
    participants         JSONB NOT NULL DEFAULT '[]',
    unread               BOOLEAN NOT NULL DEFAULT FALSE,
    unread_count         BIGINT,
    -- 0 when unknown, so that the list index covers every row.
    updated_at           BIGINT NOT NULL DEFAULT 0,
    muted                BOOLEAN NOT NULL DEFAULT FALSE,
    hidden               BOOLEAN NOT NULL DEFAULT FALSE,
    folder               TEXT NOT NULL DEFAULT 'inbox',
    reply_window_ends_at BIGINT,
    -- TRUE while the row was only created because a message referenced it.
    is_stub              BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (account_id, conversation_id)
);
CREATE INDEX conversations_by_activity
    ON conversations (account_id, updated_at DESC, conversation_id DESC);

CREATE TABLE messages (
    -- Surrogate key; paging ties and search hits refer to it.
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    message_id          TEXT NOT NULL,
    sender_id           TEXT NOT NULL,
    sender_username     TEXT,
    sender_display_name TEXT,
    sender_is_self      BOOLEAN NOT NULL DEFAULT FALSE,
    sent_at             BIGINT NOT NULL,
    content_type        TEXT NOT NULL,
    text                TEXT,
    -- The text lower-cased, without diacritics, punctuation turned into
    -- spaces, computed by igdm (crate::fold) so that queries fold the same way.
    text_folded         TEXT,
    attachments         JSONB NOT NULL DEFAULT '[]',
    reply_to            JSONB,
    is_deleted          BOOLEAN NOT NULL DEFAULT FALSE,
    edited_at           BIGINT,
    send_status         TEXT,
    search              TSVECTOR GENERATED ALWAYS AS
        (to_tsvector('simple'::regconfig, coalesce(text_folded, ''))) STORED,
    UNIQUE (account_id, conversation_id, message_id),
    FOREIGN KEY (account_id, conversation_id)
        REFERENCES conversations (account_id, conversation_id) ON DELETE CASCADE
);
CREATE INDEX messages_by_time ON messages (account_id, conversation_id, sent_at DESC, seq DESC);
CREATE INDEX messages_by_account_time ON messages (account_id, sent_at DESC);
CREATE INDEX messages_by_sender ON messages (account_id, sender_id);

CREATE INDEX messages_search ON messages USING GIN (search);

-- No foreign key to messages: a reaction may arrive before its message.
CREATE TABLE reactions (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    emoji           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, conversation_id, message_id, sender_id, emoji)
);

CREATE TABLE attachments (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    position        BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    url             TEXT,
    mime            TEXT,
    size            BIGINT,
    duration        DOUBLE PRECISION,
    PRIMARY KEY (account_id, conversation_id, message_id, position)
);

-- Edits and deletions that arrived before their message.
CREATE TABLE pending_mutations (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('edit', 'delete')),
    text            TEXT,
    at              BIGINT NOT NULL,
    PRIMARY KEY (account_id, conversation_id, message_id, kind)
);

CREATE TABLE sync_cursors (
    account_id      TEXT NOT NULL,
    -- '' for the inbox-level cursor.
    conversation_id TEXT NOT NULL,
    newest_seen_at  BIGINT,
    oldest_seen_at  BIGINT,
    newest_cursor   TEXT,
    oldest_cursor   TEXT,
    completed       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, conversation_id)
);

CREATE TABLE raw_payloads (
    account_id  TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    payload     JSONB NOT NULL,
    fetched_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, object_kind, object_id)
);

CREATE TABLE outbox (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    account_id      TEXT NOT NULL,
    conversation_id TEXT,
    recipient_id    TEXT,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    result          JSONB,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX outbox_open ON outbox (state, created_at);

CREATE TABLE webhook_deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    raw_body    BYTEA NOT NULL,
    -- events of this delivery that were already stored (retried deliveries).
    duplicates  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE webhook_dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT REFERENCES webhook_deliveries (id),
    raw_body    BYTEA,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE webhook_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id),
    dedup_key    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processing', 'done', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    available_at BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX webhook_events_ready ON webhook_events (available_at) WHERE state = 'pending';
CREATE INDEX webhook_events_leased ON webhook_events (lease_until) WHERE state = 'processing';
