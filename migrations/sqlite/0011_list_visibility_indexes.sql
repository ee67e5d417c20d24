-- As migrations/postgres/0006: a non-admin caller's list (`owner = ? OR team = ?`) finds its
-- rows through these instead of reading every cluster ever kept.
CREATE INDEX clusters_owner_created ON clusters (owner, created_ms, id);
CREATE INDEX clusters_team_created ON clusters (team, created_ms, id);
