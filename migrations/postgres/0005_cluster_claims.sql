-- Reconcile claims: which replica steps a cluster now, and until when. A replica that dies
-- leaves its claim to expire (`until_ms`), and another takes the cluster over. Kept apart from
-- `clusters` so a claim never moves a cluster's version (writes from the API would otherwise
-- conflict with every claim and renewal).
CREATE TABLE cluster_claims (
    cluster_id TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    until_ms   BIGINT NOT NULL
);
