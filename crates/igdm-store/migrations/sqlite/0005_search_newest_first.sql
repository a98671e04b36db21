-- Full-text search walks its index newest first and stops at the page size,
-- so the index's rowid order must be the time order. The key is the minute
-- the message was sent (clamped to 0 .. 2^27 - 1, about year 2225) in the
-- high bits and `seq` in the low 36 bits: unique because `seq` is, and in
-- time order between minutes. Within one minute the order is by `seq`;
-- search reads the rest of the last minute it reaches and sorts.
ALTER TABLE messages ADD COLUMN fts_key INTEGER GENERATED ALWAYS AS
    ((min(max(sent_at, 0) / 60000000, 134217727) << 36) + seq) VIRTUAL;
-- FTS5 reads a row's text by this key (snippets).
CREATE UNIQUE INDEX messages_by_fts_key ON messages (fts_key);

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    text,
    content = 'messages',
    content_rowid = 'fts_key',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.fts_key, new.text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.fts_key, old.text);
END;
-- Every upsert conflict is an UPDATE: only a changed text or time moves the entry.
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, sent_at ON messages
WHEN old.text IS NOT new.text OR old.sent_at IS NOT new.sent_at BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.fts_key, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.fts_key, new.text);
END;
