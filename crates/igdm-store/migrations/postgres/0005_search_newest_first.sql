-- Search is newest first: `ORDER BY sent_at DESC, seq DESC LIMIT n` over an
-- account's matches. With this index the planner can walk the account's
-- messages in exactly that order and stop at the page size (common words),
-- or take the GIN index's matches and sort them (rare words). It replaces
-- the index without `seq`, which needed a sort for ties.
CREATE INDEX messages_by_account_newest ON messages (account_id, sent_at DESC, seq DESC);
DROP INDEX IF EXISTS messages_by_account_time;
