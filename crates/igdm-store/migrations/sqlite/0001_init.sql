-- igdm local store, SQLite dialect. Times are Unix microseconds (INTEGER),
-- booleans are 0/1, JSON is TEXT. Keep in step with ../postgres/0001_init.sql.

CREATE TABLE accounts (
    account_id  TEXT PRIMARY KEY NOT NULL,
    connector   TEXT NOT NULL,
    backend     TEXT NOT NULL,
    user_id     TEXT,
    username    TEXT,
    base_url    TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    account_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    username            TEXT,
    display_name        TEXT,
    profile_picture_url TEXT,
    follows_account     INTEGER,
    followed_by_account INTEGER,
    is_verified         INTEGER,
    follower_count      INTEGER,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

CREATE TABLE conversations (
    account_id           TEXT NOT NULL,
    conversation_id      TEXT NOT NULL,
    kind                 TEXT NOT NULL DEFAULT 'direct',
    title                TEXT,
    participants         TEXT NOT NULL DEFAULT '[]',
    unread               INTEGER NOT NULL DEFAULT 0,
    unread_count         INTEGER,
    -- 0 when unknown, so that the list index covers every row.
    updated_at           INTEGER NOT NULL DEFAULT 0,
    muted                INTEGER NOT NULL DEFAULT 0,
    hidden               INTEGER NOT NULL DEFAULT 0,
    folder               TEXT NOT NULL DEFAULT 'inbox',
    reply_window_ends_at INTEGER,
    -- 1 while the row was only created because a message referenced it.
    is_stub              INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, conversation_id)
);
CREATE INDEX conversations_by_activity
    ON conversations (account_id, updated_at DESC, conversation_id DESC);

CREATE TABLE messages (
    -- Stable integer key for the FTS5 external-content table (a plain rowid
    -- may be renumbered by VACUUM).
    seq                 INTEGER PRIMARY KEY,
    account_id          TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    message_id          TEXT NOT NULL,
    sender_id           TEXT NOT NULL,
    sender_username     TEXT,
    sender_display_name TEXT,
    sender_is_self      INTEGER NOT NULL DEFAULT 0,
    sent_at             INTEGER NOT NULL,
    content_type        TEXT NOT NULL,
    text                TEXT,
    -- Unused here (FTS5 folds diacritics itself); PostgreSQL indexes it.
    text_folded         TEXT,
    attachments         TEXT NOT NULL DEFAULT '[]',
    reply_to            TEXT,
    is_deleted          INTEGER NOT NULL DEFAULT 0,
    edited_at           INTEGER,
    send_status         TEXT,
    UNIQUE (account_id, conversation_id, message_id),
    FOREIGN KEY (account_id, conversation_id)
        REFERENCES conversations (account_id, conversation_id) ON DELETE CASCADE
);
CREATE INDEX messages_by_time ON messages (account_id, conversation_id, sent_at DESC, seq DESC);
CREATE INDEX messages_by_account_time ON messages (account_id, sent_at DESC);
CREATE INDEX messages_by_sender ON messages (account_id, sender_id);

CREATE VIRTUAL TABLE messages_fts USING fts5(
    text,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;

-- No foreign key to messages: a reaction may arrive before its message.
CREATE TABLE reactions (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    sender_id       TEXT NOT NULL,
    emoji           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, conversation_id, message_id, sender_id, emoji)
);

CREATE TABLE attachments (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    position        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    url             TEXT,
    mime            TEXT,
    size            INTEGER,
    duration        REAL,
    PRIMARY KEY (account_id, conversation_id, message_id, position)
);

-- Edits and deletions that arrived before their message.
CREATE TABLE pending_mutations (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('edit', 'delete')),
    text            TEXT,
    at              INTEGER NOT NULL,
    PRIMARY KEY (account_id, conversation_id, message_id, kind)
);

CREATE TABLE sync_cursors (
    account_id      TEXT NOT NULL,
    -- '' for the inbox-level cursor.
    conversation_id TEXT NOT NULL,
    newest_seen_at  INTEGER,
    oldest_seen_at  INTEGER,
    newest_cursor   TEXT,
    oldest_cursor   TEXT,
    completed       INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, conversation_id)
);

CREATE TABLE raw_payloads (
    account_id  TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    payload     TEXT NOT NULL,
    fetched_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, object_kind, object_id)
);

CREATE TABLE outbox (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    account_id      TEXT NOT NULL,
    conversation_id TEXT,
    recipient_id    TEXT,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_open ON outbox (state, created_at);

CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    raw_body    BLOB NOT NULL,
    -- events of this delivery that were already stored (retried deliveries).
    duplicates  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE webhook_dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER REFERENCES webhook_deliveries (id),
    raw_body    BLOB,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE webhook_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    dedup_key    TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processing', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX webhook_events_ready ON webhook_events (available_at) WHERE state = 'pending';
CREATE INDEX webhook_events_leased ON webhook_events (lease_until) WHERE state = 'processing';
