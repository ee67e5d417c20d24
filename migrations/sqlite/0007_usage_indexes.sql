-- Quotas and the policy's input count an owner's and a team's live clusters on every create:
-- these partial indexes keep that from scanning every cluster ever kept.
CREATE INDEX clusters_live_owner ON clusters (owner) WHERE phase IN ('Pending', 'Provisioning', 'Ready');
CREATE INDEX clusters_live_team ON clusters (team) WHERE phase IN ('Pending', 'Provisioning', 'Ready');
