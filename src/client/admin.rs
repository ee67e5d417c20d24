//! The client's calls about credentials and identities: a cluster's gateway credentials,
//! `whoami`, tokens (admins) and a team's quota use.

use reqwest::Method;

use super::{Client, Result};
use crate::api::{
    CreateTokenRequest, CreatedToken, GatewayCredentialList, RevokedCredentials, TokenList,
    TokenView, WhoAmI,
};

// === impl Client ===

impl Client {
    /// `GET /v1/clusters/{id}/credentials`: its gateway credentials.
    pub async fn credentials(&self, id: &str) -> Result<GatewayCredentialList> {
        let path = ["v1", "clusters", id, "credentials"];
        self.json(self.request(Method::GET, &path)?).await
    }

    /// `DELETE /v1/clusters/{id}/credentials[/{credential}]`: revoke them (or one).
    pub async fn revoke_credentials(
        &self,
        id: &str,
        credential: Option<&str>,
    ) -> Result<RevokedCredentials> {
        let mut path = vec!["v1", "clusters", id, "credentials"];
        path.extend(credential);
        self.json(self.request(Method::DELETE, &path)?).await
    }

    /// `GET /v1/whoami`: the caller as the server sees it.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.json(self.request(Method::GET, &["v1", "whoami"])?)
            .await
    }

    /// `POST /v1/tokens` (admins): the new token and its secret, shown this once.
    pub async fn create_token(&self, req: &CreateTokenRequest) -> Result<CreatedToken> {
        self.json(self.request(Method::POST, &["v1", "tokens"])?.json(req))
            .await
    }

    /// `GET /v1/tokens` (admins).
    pub async fn list_tokens(&self) -> Result<TokenList> {
        self.json(self.request(Method::GET, &["v1", "tokens"])?)
            .await
    }

    /// `GET /v1/hosts`: the hosts with their capacity and use.
    pub async fn hosts(&self) -> Result<crate::api::HostList> {
        self.json(self.request(Method::GET, &["v1", "hosts"])?)
            .await
    }

    /// `GET /v1/clusters/{id}/usage`: what a Ready cluster uses now.
    pub async fn cluster_usage(&self, id: &str) -> Result<crate::domain::usage::ClusterUsage> {
        self.json(self.request(Method::GET, &["v1", "clusters", id, "usage"])?)
            .await
    }

    /// `GET /v1/teams/{team}/usage`: a team's live clusters against its quota.
    pub async fn team_usage(&self, team: &str) -> Result<crate::service::TeamUsage> {
        self.json(self.request(Method::GET, &["v1", "teams", team, "usage"])?)
            .await
    }

    /// `GET /v1/audit` (admins): a page of audit records; `query` holds the filters as
    /// query parameters.
    pub async fn audit_page(&self, query: &[(&str, String)]) -> Result<crate::api::AuditPage> {
        self.json(self.request(Method::GET, &["v1", "audit"])?.query(query))
            .await
    }

    /// `GET /v1/audit/anchor` (admins): where a walk of the audit chain starts.
    pub async fn audit_anchor(&self) -> Result<crate::audit::Anchor> {
        self.json(self.request(Method::GET, &["v1", "audit", "anchor"])?)
            .await
    }

    /// `DELETE /v1/tokens/{id}` (admins): revoke it.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenView> {
        self.json(self.request(Method::DELETE, &["v1", "tokens", id])?)
            .await
    }
}
