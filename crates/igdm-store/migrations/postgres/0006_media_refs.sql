-- Media kept locally: which stored file (by SHA-256) holds each attachment.
CREATE TABLE media_refs (
    account_id      TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    position        BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    mime            TEXT,
    stored_at       BIGINT NOT NULL,
    PRIMARY KEY (account_id, conversation_id, message_id, position)
);
CREATE INDEX media_refs_by_message ON media_refs (account_id, message_id);
CREATE INDEX media_refs_by_hash ON media_refs (account_id, sha256);
