//! [`Store`] for [`PostgresStore`]: each method is implemented in the module of its concern.

use async_trait::async_trait;

use super::PostgresStore;
use crate::domain::{
    ApiToken, AuditCheckpoint, AuditRecord, Cluster, ClusterEvent, ClusterId, GatewayCredential,
    NewEvent, NewNotification, Notification, Phase, PrUpdate, PullRequest, StatusReport,
    StatusWant, Timestamp,
};
use crate::store::{
    Attempt, AuditFilter, AuditHead, Census, ClusterFilter, IdempotencyRecord, OwnerUse, Page,
    Store, StoreError,
};

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.exec(sqlx::query("SELECT 1"), "ping").await.map(drop)
    }

    async fn insert_cluster(
        &self,
        cluster: &Cluster,
        event: &NewEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        self.insert_cluster_impl(cluster, event, idempotency).await
    }

    async fn get_cluster(&self, id: &ClusterId) -> Result<Option<Cluster>, StoreError> {
        self.get_cluster_impl(id).await
    }

    async fn get_live_by_name(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        self.get_live_by_name_impl(name).await
    }

    async fn update_cluster(
        &self,
        cluster: &Cluster,
        events: &[NewEvent],
    ) -> Result<Cluster, StoreError> {
        self.update_cluster_impl(cluster, events).await
    }

    async fn list_events(&self, id: &ClusterId) -> Result<Vec<ClusterEvent>, StoreError> {
        self.list_events_impl(id).await
    }

    async fn due_clusters(
        &self,
        holder: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Cluster>, StoreError> {
        self.due_clusters_impl(holder, now, limit).await
    }

    async fn claim_cluster(
        &self,
        id: &ClusterId,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.claim_cluster_impl(id, holder, until, now).await
    }

    async fn release_claim(&self, id: &ClusterId, holder: &str) -> Result<(), StoreError> {
        self.release_claim_impl(id, holder).await
    }

    async fn placement_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        self.placement_lock_impl().await
    }

    async fn audit_lock(&self) -> Result<crate::store::PlacementLock, StoreError> {
        self.held_lock(super::LOCK_AUDIT, "audit", "taking the audit lock")
            .await
    }

    async fn try_lead(
        &self,
        role: &str,
    ) -> Result<Option<Box<dyn crate::store::Leadership>>, StoreError> {
        self.try_lead_impl(role).await
    }

    async fn release_claims(&self, holder: &str) -> Result<u64, StoreError> {
        self.release_claims_impl(holder).await
    }

    async fn live_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        self.live_clusters_impl().await
    }

    async fn get_idempotency(
        &self,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.get_idempotency_impl(principal, key).await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_ended_impl(before).await
    }

    async fn installation_id(&self) -> Result<String, StoreError> {
        self.installation_id_impl().await
    }

    async fn list_clusters(&self, filter: &ClusterFilter) -> Result<Page<Cluster>, StoreError> {
        self.list_clusters_impl(filter).await
    }

    async fn insert_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        self.insert_token_impl(token).await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.token_by_hash_impl(hash).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.list_tokens_impl().await
    }

    async fn revoke_token(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.revoke_token_impl(id, at).await
    }

    async fn token_used(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.token_used_impl(id, at).await
    }

    async fn insert_gateway_credential(&self, c: &GatewayCredential) -> Result<(), StoreError> {
        self.insert_gateway_credential_impl(c).await
    }

    async fn gateway_credential_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<GatewayCredential>, StoreError> {
        self.gateway_credential_by_hash_impl(hash).await
    }

    async fn gateway_credentials_of(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<GatewayCredential>, StoreError> {
        self.gateway_credentials_of_impl(cluster_id).await
    }

    async fn revoke_gateway_credentials(
        &self,
        cluster_id: &str,
        id: Option<&str>,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.revoke_gateway_credentials_impl(cluster_id, id, at)
            .await
    }

    async fn record_delivery(
        &self,
        provider: &str,
        delivery_id: &str,
        event: &str,
        update: Option<&PrUpdate>,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        self.record_delivery_impl(provider, delivery_id, event, update, now)
            .await
    }

    async fn pending_pull_requests(&self, limit: usize) -> Result<Vec<PullRequest>, StoreError> {
        self.pending_pull_requests_impl(limit).await
    }

    async fn get_pull_request(&self, key: &str) -> Result<Option<PullRequest>, StoreError> {
        self.get_pull_request_impl(key).await
    }

    async fn pull_request_done(
        &self,
        key: &str,
        generation: i64,
        cluster: Option<&ClusterId>,
    ) -> Result<(), StoreError> {
        self.pull_request_done_impl(key, generation, cluster).await
    }

    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_deliveries_impl(before).await
    }

    async fn reportable_pull_requests(
        &self,
        changed_since: Timestamp,
        limit: usize,
    ) -> Result<Vec<PullRequest>, StoreError> {
        self.reportable_pull_requests_impl(changed_since, limit)
            .await
    }

    async fn want_status(&self, want: &StatusWant, now: Timestamp) -> Result<bool, StoreError> {
        self.want_status_impl(want, now).await
    }

    async fn due_statuses(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<StatusReport>, StoreError> {
        self.due_statuses_impl(now, limit).await
    }

    async fn status_reports(&self, pr_key: &str) -> Result<Vec<StatusReport>, StoreError> {
        self.status_reports_impl(pr_key).await
    }

    async fn status_attempted(
        &self,
        report: &StatusReport,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.status_attempted_impl(report, attempt, now).await
    }

    async fn purge_statuses(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_statuses_impl(before).await
    }

    async fn notify_cursor(&self) -> Result<i64, StoreError> {
        self.notify_cursor_impl().await
    }

    async fn set_notify_cursor(&self, event_id: i64) -> Result<(), StoreError> {
        self.set_notify_cursor_impl(event_id).await
    }

    async fn events_into(
        &self,
        phase: Phase,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<ClusterEvent>, StoreError> {
        self.events_into_impl(phase, after_id, limit).await
    }

    async fn enqueue_notification(
        &self,
        alert: &NewNotification,
        now: Timestamp,
        repeat_since: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        self.enqueue_notification_impl(alert, now, repeat_since)
            .await
    }

    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        self.due_notifications_impl(now, limit).await
    }

    async fn notification_attempted(
        &self,
        id: i64,
        attempt: Attempt<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.notification_attempted_impl(id, attempt, now).await
    }

    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.purge_notifications_impl(before).await
    }

    async fn team_use(&self, team: &str) -> Result<Vec<OwnerUse>, StoreError> {
        self.team_use_impl(team).await
    }

    async fn owner_use(&self, owner: &str) -> Result<OwnerUse, StoreError> {
        self.owner_use_impl(owner).await
    }

    async fn census(&self) -> Result<Census, StoreError> {
        self.census_impl().await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        self.audit_head_impl().await
    }

    async fn audit_append(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.audit_append_impl(records).await
    }

    async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_list_impl(filter).await
    }

    async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.audit_checkpoint_impl().await
    }

    async fn audit_last_before(
        &self,
        before: Timestamp,
    ) -> Result<Option<AuditRecord>, StoreError> {
        self.audit_last_before_impl(before).await
    }

    async fn audit_purge(&self, checkpoint: &AuditCheckpoint) -> Result<u64, StoreError> {
        self.audit_purge_impl(checkpoint).await
    }
}
