-- Events that failed for good, so that counting the backlog for /metrics
-- reads partial indexes only, not every event ever received.
CREATE INDEX webhook_events_failed ON webhook_events (id) WHERE state = 'failed';
