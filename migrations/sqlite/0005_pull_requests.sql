-- Webhook deliveries seen, by provider and delivery id: each is processed at most once (a
-- redelivery keeps its id). Pruned after a week.
CREATE TABLE webhook_deliveries (
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_ms);

-- Pull requests vcm keeps clusters for: what the latest accepted event wants (open at a head
-- commit, or closed), and how far the engine has carried it out (done_generation).
CREATE TABLE pull_requests (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    repository TEXT NOT NULL,
    number INTEGER NOT NULL,
    open INTEGER NOT NULL,
    head_sha TEXT NOT NULL,
    branch TEXT NOT NULL,
    url TEXT NOT NULL,
    installation_id INTEGER,
    version_ms INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    done_generation INTEGER NOT NULL,
    cluster_id TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX pull_requests_pending ON pull_requests (updated_ms) WHERE generation > done_generation;
