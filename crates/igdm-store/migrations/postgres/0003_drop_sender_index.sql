-- No query can use this index: the only filter on the sender, search's
-- `from:`, matches the username or the id (`lower(sender_username) = … OR
-- sender_id = …`), and an OR with an unindexed arm is answered from
-- messages_by_account_time. Each stored message still paid for it: one
-- more B-tree leaf written at a random place, about a sixth of what the
-- webhook pipeline wrote per delivery at 2,000 deliveries/s on SQLite.
DROP INDEX IF EXISTS messages_by_sender;
