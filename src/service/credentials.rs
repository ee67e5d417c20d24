//! Credential use-cases: kubeconfigs (direct, with a ServiceAccount token minted in the
//! cluster) and gateway credentials (issued, listed, revoked).

use super::ClusterService;
use super::access::Action;
use crate::domain::{
    Cluster, GatewayCredential, InvalidField, NewEvent, Phase, Principal, Timestamp, TokenSecret,
    Ttl, now_ms, quoted,
};
use crate::driver::Kubeconfig;
use crate::error::{Error, Result};

/// Default lifetime of a kubeconfig token.
const DEFAULT_KUBECONFIG_TTL: Ttl = Ttl::from_secs_const(3600);

impl ClusterService {
    /// A kubeconfig for CI: a ServiceAccount token minted in the cluster, expiring at `ttl` or at
    /// the cluster's expiry, whichever is first. Counts as activity.
    pub async fn kubeconfig(
        &self,
        principal: &Principal,
        id_or_name: &str,
        ttl: Option<&str>,
    ) -> Result<Kubeconfig> {
        let (cluster, secs) = self.credentials_for(principal, id_or_name, ttl).await?;
        let kubeconfig = self.driver.ci_kubeconfig(&cluster, secs).await?;
        let msg = format!(
            "kubeconfig issued to {} for {}",
            principal,
            Ttl::from_secs(secs)
        );
        self.record_issue(&cluster, msg).await?;
        Ok(kubeconfig)
    }

    /// A gateway credential for `principal` on one cluster, expiring at `ttl` or at the
    /// cluster's expiry, whichever is first: its record and its secret (shown once). Counts as
    /// activity.
    pub async fn gateway_credential(
        &self,
        principal: &Principal,
        id_or_name: &str,
        ttl: Option<&str>,
    ) -> Result<(Cluster, GatewayCredential, TokenSecret)> {
        let (cluster, secs) = self.credentials_for(principal, id_or_name, ttl).await?;
        let secret = TokenSecret::generate_gateway();
        let expires_at = now_ms() + jiff::SignedDuration::from_secs(secs as i64);
        let credential = GatewayCredential {
            hash: secret.hash(),
            ..GatewayCredential::new(cluster.id.as_str(), principal, expires_at)
        };
        self.store.insert_gateway_credential(&credential).await?;
        let msg = format!(
            "gateway credential {} issued to {} for {}",
            credential.id,
            principal,
            Ttl::from_secs(secs)
        );
        self.record_issue(&cluster, msg).await?;
        Ok((cluster, credential, secret))
    }

    /// The gateway credentials of a cluster, newest first (for whoever may take its credentials).
    pub async fn gateway_credentials(
        &self,
        principal: &Principal,
        id_or_name: &str,
    ) -> Result<Vec<GatewayCredential>> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Credentials)
            .await?;
        Ok(self
            .store
            .gateway_credentials_of(cluster.id.as_str())
            .await?)
    }

    /// Revoke a cluster's gateway credentials (only `credential` when given): requests that
    /// present them are refused from now on, and the gateway ends their open streams within a
    /// second. Returns how many were revoked; revoking a revoked credential changes nothing.
    pub async fn revoke_gateway_credentials(
        &self,
        principal: &Principal,
        id_or_name: &str,
        credential: Option<&str>,
    ) -> Result<u64> {
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Credentials)
            .await?;
        self.check_policy(
            principal,
            crate::policy::action::CLUSTER_CREDENTIALS_REVOKE,
            Some(&cluster),
            Some(serde_json::json!({ "credential": credential })),
        )
        .await?;
        if let Some(id) = credential {
            let known = self
                .store
                .gateway_credentials_of(cluster.id.as_str())
                .await?;
            if !known.iter().any(|c| c.id == id) {
                return Err(Error::NotFound(format!(
                    "cluster {} has no gateway credential {} (`vcm cluster credentials {}` lists them)",
                    cluster.name,
                    quoted(id),
                    cluster.name
                )));
            }
        }
        let revoked = self
            .store
            .revoke_gateway_credentials(cluster.id.as_str(), credential, now_ms())
            .await?;
        if revoked > 0 {
            let what = credential.map_or_else(
                || format!("{revoked} gateway credential(s)"),
                |id| format!("gateway credential {id}"),
            );
            let msg = format!("{what} revoked by {principal}");
            self.modify(cluster.id.as_str(), |_| {
                Ok(vec![NewEvent::new("credentials_revoked", msg.clone())])
            })
            .await?;
        }
        Ok(revoked)
    }

    /// The cluster behind a credential request, once checked (visible, may take credentials,
    /// Ready), and how many seconds the credential may live (`ttl`, at most the cluster's).
    async fn credentials_for(
        &self,
        principal: &Principal,
        id_or_name: &str,
        ttl: Option<&str>,
    ) -> Result<(Cluster, u64)> {
        let ttl = match ttl {
            Some(t) => Ttl::parse("ttl", t)?,
            None => DEFAULT_KUBECONFIG_TTL,
        };
        if ttl > self.policy.max_kubeconfig_ttl {
            return Err(InvalidField::new(
                "ttl",
                format!(
                    "longer than the allowed maximum {}",
                    self.policy.max_kubeconfig_ttl
                ),
            )
            .into());
        }
        let cluster = self
            .resolve_for(principal, id_or_name, Action::Credentials)
            .await?;
        let request = serde_json::json!({ "ttl": ttl.as_secs() });
        self.check_policy(
            principal,
            crate::policy::action::CLUSTER_KUBECONFIG,
            Some(&cluster),
            Some(request),
        )
        .await?;
        if cluster.phase != Phase::Ready {
            return Err(Error::conflict(
                "cluster_not_ready",
                format!(
                    "cluster {} is {}; credentials are issued once it is Ready (`vcm cluster create --wait` waits for that)",
                    cluster.name, cluster.phase
                ),
            ));
        }
        let remaining = cluster
            .expires_at
            .duration_since(Timestamp::now())
            .as_secs()
            .max(0) as u64;
        Ok((cluster, ttl.as_secs().min(remaining)))
    }

    /// An issued credential: an event, and activity.
    async fn record_issue(&self, cluster: &Cluster, msg: String) -> Result<()> {
        self.modify(cluster.id.as_str(), |c| {
            c.last_activity_at = now_ms();
            Ok(vec![NewEvent::new("kubeconfig_issued", msg.clone())])
        })
        .await
        .map(drop)
    }
}
