-- Deliveries can be stored before they are parsed: `igdm serve` appends the
-- raw body alone before acknowledging it and stores the events (or the dead
-- letter) afterwards. Until then a delivery is unexpanded, optionally leased
-- to the process that will expand it. Rows stored before this migration, and
-- every delivery stored with its events, are expanded.
ALTER TABLE webhook_deliveries ADD COLUMN expanded INTEGER NOT NULL DEFAULT 1;
ALTER TABLE webhook_deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_until INTEGER;
CREATE INDEX webhook_deliveries_unexpanded ON webhook_deliveries (id) WHERE NOT expanded;
