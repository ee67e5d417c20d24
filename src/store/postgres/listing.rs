//! Listing clusters on PostgreSQL: filters, visibility, label selectors, keyset pages, usage
//! and the census.

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgRow;

use super::rows::{cluster_from_row, get, phase, to_i64, to_u64, ts};
use super::{DEFAULT_LIMIT, MAX_LIMIT, PostgresStore, StoreResult};
use crate::domain::{Cluster, Phase, RepoGrant, Timestamp};
use crate::store::{Census, CensusGroup, ClusterFilter, Cursor, OwnerUse, Page};

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn list_clusters_impl(
        &self,
        filter: &ClusterFilter,
    ) -> StoreResult<Page<Cluster>> {
        let limit = match filter.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        // NB: the SQL varies only in which fixed fragments it has; every value, label keys
        // included, is a bound parameter (numbered as they are pushed), so no input reaches the
        // SQL text. A label requirement is JSONB containment, which the GIN index answers.
        let mut sql = String::from(select_clusters!("WHERE true"));
        let mut n = 0;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if filter.phase.is_some() {
            sql += &format!(" AND phase = {}", param());
        }
        if filter.owner.is_some() {
            sql += &format!(" AND owner = {}", param());
        }
        if let Some(v) = &filter.visible_to {
            sql += &format!(" AND (owner = {}", param());
            if v.team.is_some() {
                sql += &format!(" OR team = {}", param());
            }
            if v.repository.is_some() {
                let (prefix, key, value) = (param(), param(), param());
                sql += &format!(
                    " OR (starts_with(owner, {prefix}) \
                     AND labels @> jsonb_build_object({key}::text, {value}::text))"
                );
            }
            sql.push(')');
        }
        for _ in filter.labels.requirements() {
            let (key, value) = (param(), param());
            sql += &format!(" AND labels @> jsonb_build_object({key}::text, {value}::text)");
        }
        if filter.after.is_some() {
            let (ms, id) = (param(), param());
            sql += &format!(" AND (created_ms, id) > ({ms}, {id})");
        }
        sql += &format!(" ORDER BY created_ms, id LIMIT {}", param());

        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(phase) = filter.phase {
            q = q.bind(phase.as_str());
        }
        if let Some(owner) = &filter.owner {
            q = q.bind(owner);
        }
        if let Some(v) = &filter.visible_to {
            q = q.bind(&v.owner);
            if let Some(team) = &v.team {
                q = q.bind(team);
            }
            if let Some(g) = &v.repository {
                q = q.bind(RepoGrant::OWNER_PREFIX).bind(g.label).bind(&g.value);
            }
        }
        for (k, v) in filter.labels.requirements() {
            q = q.bind(k).bind(v);
        }
        if let Some(after) = &filter.after {
            q = q.bind(after.created_ms).bind(&after.id);
        }
        // One more than asked tells whether another page follows.
        q = q.bind(to_i64(limit + 1)?);

        let mut items = self.all(q, cluster_from_row, "listing clusters").await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = items.last().filter(|_| more).map(|c| Cursor {
            created_ms: c.created_at.as_millisecond(),
            id: c.id.as_str().to_owned(),
        });
        Ok(Page { items, next })
    }
}

/// Phases that hold a cluster's resources and count against quotas.
const LIVE: &str = "phase IN ('Pending', 'Provisioning', 'Ready')";

impl PostgresStore {
    pub(super) async fn team_use_impl(&self, team: &str) -> StoreResult<Vec<OwnerUse>> {
        // NB: SUM of BIGINT is NUMERIC in PostgreSQL; the cast keeps it an i64.
        let sql = format!(
            "SELECT owner, COUNT(*) AS clusters, COALESCE(SUM(ttl_secs), 0)::BIGINT AS ttl_secs \
             FROM clusters WHERE team = $1 AND {LIVE} GROUP BY owner ORDER BY owner"
        );
        let q = sqlx::query(AssertSqlSafe(sql)).bind(team);
        self.all(q, owner_use_from_row, "counting a team's live clusters")
            .await
    }

    pub(super) async fn owner_use_impl(&self, owner: &str) -> StoreResult<OwnerUse> {
        let sql = format!(
            "SELECT $1::text AS owner, COUNT(*) AS clusters, \
             COALESCE(SUM(ttl_secs), 0)::BIGINT AS ttl_secs FROM clusters \
             WHERE owner = $1 AND {LIVE}"
        );
        let q = sqlx::query(AssertSqlSafe(sql)).bind(owner);
        self.one(q, owner_use_from_row, "counting an owner's live clusters")
            .await
            .map(Option::unwrap_or_default)
    }

    pub(super) async fn census_impl(&self) -> StoreResult<Census> {
        let q = sqlx::query(
            "SELECT phase, host, size, kubernetes_version, COUNT(*) AS n FROM clusters \
             GROUP BY phase, host, size, kubernetes_version ORDER BY phase, host, size, \
             kubernetes_version",
        );
        let groups = self
            .all(q, group_from_row, "counting clusters by phase")
            .await?;
        // NB: a cluster entered its phase at its last event into it; one created before events
        // recorded phases (none should be) counts from its creation.
        let q = sqlx::query(
            "SELECT c.phase AS phase, MIN(COALESCE((SELECT MAX(e.at_ms) FROM cluster_events e \
             WHERE e.cluster_id = c.id AND e.to_phase = c.phase), c.created_ms)) AS since \
             FROM clusters c WHERE c.phase IN ('Pending', 'Provisioning', 'Deleting') \
             GROUP BY c.phase ORDER BY c.phase",
        );
        let waiting_since = self
            .all(q, waiting_from_row, "finding the longest-waiting clusters")
            .await?;
        let q = sqlx::query("SELECT COUNT(*) AS n FROM status_reports WHERE sent_seq < seq");
        let status_backlog = self
            .one(q, count_from_row, "counting unsent status reports")
            .await?
            .unwrap_or(0);
        let q = sqlx::query("SELECT COUNT(*) AS n FROM notifications WHERE state = 'queued'");
        let notification_backlog = self
            .one(q, count_from_row, "counting unsent notifications")
            .await?
            .unwrap_or(0);
        Ok(Census {
            groups,
            waiting_since,
            status_backlog,
            notification_backlog,
        })
    }
}

fn count_from_row(r: &PgRow) -> StoreResult<u64> {
    to_u64(get(r, "n")?)
}

fn group_from_row(r: &PgRow) -> StoreResult<CensusGroup> {
    Ok(CensusGroup {
        phase: phase(get(r, "phase")?)?,
        host: get(r, "host")?,
        size: get(r, "size")?,
        version: get(r, "kubernetes_version")?,
        count: to_u64(get(r, "n")?)?,
    })
}

fn waiting_from_row(r: &PgRow) -> StoreResult<(Phase, Timestamp)> {
    let since: i64 = get(r, "since")?;
    Ok((phase(get(r, "phase")?)?, ts(since)?))
}

fn owner_use_from_row(r: &PgRow) -> StoreResult<OwnerUse> {
    Ok(OwnerUse {
        owner: get(r, "owner")?,
        clusters: to_u64(get(r, "clusters")?)?,
        ttl_secs: to_u64(get(r, "ttl_secs")?)?,
    })
}
