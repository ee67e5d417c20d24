-- Gateway credentials: the bearer tokens of kubeconfigs that point at the cluster gateway. Only
-- the SHA-256 of the secret is kept. Each opens one cluster for one principal until it expires
-- or is revoked; they go with their cluster when its record is purged.
CREATE TABLE gateway_credentials (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    cluster_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    display TEXT NOT NULL,
    role TEXT NOT NULL,
    team TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX gateway_credentials_cluster ON gateway_credentials (cluster_id);
