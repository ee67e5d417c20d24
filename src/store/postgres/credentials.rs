//! API tokens and gateway credentials on PostgreSQL.

use super::rows::{gateway_credential_from_row, token_from_row};
use super::{PostgresStore, StoreResult};
use crate::domain::{ApiToken, GatewayCredential, Timestamp};
use crate::store::StoreError;

/// `SELECT <every token column> FROM api_tokens <tail>`.
macro_rules! select_tokens {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, hash, role, team, created_ms, expires_ms, revoked_ms, last_used_ms \
             FROM api_tokens ",
            $tail
        )
    };
}

/// `SELECT <every gateway credential column> FROM gateway_credentials <tail>`.
macro_rules! select_gateway_credentials {
    ($tail:literal) => {
        concat!(
            "SELECT id, hash, cluster_id, subject, display, role, team, grant_label, \
             grant_value, created_ms, expires_ms, revoked_ms FROM gateway_credentials ",
            $tail
        )
    };
}

// === impl PostgresStore ===

impl PostgresStore {
    pub(super) async fn insert_token_impl(&self, token: &ApiToken) -> StoreResult<()> {
        let sql = "INSERT INTO api_tokens \
                   (id, name, hash, role, team, created_ms, expires_ms, revoked_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let q = sqlx::query(sql)
            .bind(&token.id)
            .bind(&token.name)
            .bind(&token.hash)
            .bind(token.role.as_str())
            .bind(&token.team)
            .bind(token.created_at.as_millisecond())
            .bind(token.expires_at.map(|t| t.as_millisecond()))
            .bind(token.revoked_at.map(|t| t.as_millisecond()));
        self.exec(q, &format!("inserting token {}", token.id))
            .await
            .map(drop)
    }

    pub(super) async fn token_by_hash_impl(&self, hash: &str) -> StoreResult<Option<ApiToken>> {
        let q = sqlx::query(select_tokens!("WHERE hash = $1")).bind(hash);
        self.one(q, token_from_row, "reading a token").await
    }

    pub(super) async fn list_tokens_impl(&self) -> StoreResult<Vec<ApiToken>> {
        let q = sqlx::query(select_tokens!("ORDER BY created_ms DESC, id DESC"));
        self.all(q, token_from_row, "listing tokens").await
    }

    pub(super) async fn revoke_token_impl(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        // Revoking twice keeps the first time: the audit trail should say when it stopped working.
        let sql = "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, $1) WHERE id = $2";
        let q = sqlx::query(sql).bind(at.as_millisecond()).bind(id);
        match self.exec(q, "revoking a token").await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    pub(super) async fn token_used_impl(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        let sql = "UPDATE api_tokens SET last_used_ms = GREATEST(COALESCE(last_used_ms, 0), $1) \
             WHERE id = $2";
        let q = sqlx::query(sql).bind(at.as_millisecond()).bind(id);
        self.exec(q, "recording a token's use").await.map(drop)
    }

    pub(super) async fn insert_gateway_credential_impl(
        &self,
        c: &GatewayCredential,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO gateway_credentials \
                   (id, hash, cluster_id, subject, display, role, team, grant_label, \
                    grant_value, created_ms, expires_ms, revoked_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let q = sqlx::query(sql)
            .bind(&c.id)
            .bind(&c.hash)
            .bind(&c.cluster_id)
            .bind(&c.principal.subject)
            .bind(&c.principal.display)
            .bind(c.principal.role.as_str())
            .bind(&c.principal.team)
            .bind(c.principal.repository.as_ref().map(|g| g.label))
            .bind(c.principal.repository.as_ref().map(|g| g.value.as_str()))
            .bind(c.created_at.as_millisecond())
            .bind(c.expires_at.as_millisecond())
            .bind(c.revoked_at.map(|t| t.as_millisecond()));
        self.exec(q, &format!("inserting gateway credential {}", c.id))
            .await
            .map(drop)
    }

    pub(super) async fn gateway_credential_by_hash_impl(
        &self,
        hash: &str,
    ) -> StoreResult<Option<GatewayCredential>> {
        let q = sqlx::query(select_gateway_credentials!("WHERE hash = $1")).bind(hash);
        self.one(
            q,
            gateway_credential_from_row,
            "reading a gateway credential",
        )
        .await
    }

    pub(super) async fn gateway_credentials_of_impl(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<GatewayCredential>> {
        let q = sqlx::query(select_gateway_credentials!(
            "WHERE cluster_id = $1 ORDER BY created_ms DESC, id DESC"
        ))
        .bind(cluster_id);
        self.all(
            q,
            gateway_credential_from_row,
            "listing gateway credentials",
        )
        .await
    }

    pub(super) async fn revoke_gateway_credentials_impl(
        &self,
        cluster_id: &str,
        id: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        let sql = "UPDATE gateway_credentials SET revoked_ms = $1 \
                   WHERE cluster_id = $2 AND revoked_ms IS NULL \
                   AND ($3::text IS NULL OR id = $3)";
        let q = sqlx::query(sql)
            .bind(at.as_millisecond())
            .bind(cluster_id)
            .bind(id);
        self.exec(q, "revoking gateway credentials").await
    }
}
