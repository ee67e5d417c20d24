//! Bitbucket Cloud build statuses (`POST /2.0/repositories/{workspace}/{repo}/commit/{sha}/
//! statuses/build`), posted with an access token. The status carries `refname`, the pull
//! request's source branch, so it shows on the pull request.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{SendError, api_url, checked, cut, http_client};
use crate::domain::{ReportState, StatusWant};

/// Bitbucket refuses longer keys (400).
pub const MAX_KEY: usize = 40;
/// Descriptions are kept as short as GitHub's.
const MAX_DESCRIPTION: usize = 140;

/// Posts build statuses to Bitbucket Cloud.
pub struct Bitbucket {
    http: reqwest::Client,
    api: String,
    key: String,
    token: String,
    /// `workspace/repo@short` → the full commit hash.
    hashes: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Bitbucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitbucket")
            .field("api", &self.api)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

// === impl Bitbucket ===

impl Bitbucket {
    /// Posting with `token` under build status key `key` (default `vcm-cluster`).
    pub fn new(api: Option<&str>, key: Option<&str>, token: String) -> anyhow::Result<Self> {
        let key = key.unwrap_or("vcm-cluster").to_owned();
        anyhow::ensure!(
            !key.trim().is_empty() && key.chars().count() <= MAX_KEY,
            "context {key:?}: Bitbucket's build status key is 1 to {MAX_KEY} characters"
        );
        Ok(Self {
            http: http_client()?,
            api: api_url(api, "https://api.bitbucket.org/2.0")?,
            key,
            token,
            hashes: Mutex::default(),
        })
    }

    /// Post `want` as the commit's build status.
    pub async fn post(&self, want: &StatusWant) -> Result<(), SendError> {
        let state = match want.state {
            ReportState::Pending => "INPROGRESS",
            ReportState::Ready => "SUCCESSFUL",
            ReportState::Failed | ReportState::Error => "FAILED",
            ReportState::Stopped | ReportState::Closed => "STOPPED",
        };
        let sha = self.full_hash(&want.repository, &want.sha).await?;
        let body = json!({
            "key": self.key,
            "state": state,
            "name": "vcm cluster",
            "url": want.target_url,
            "description": cut(&want.description, MAX_DESCRIPTION),
            "refname": want.branch,
        });
        let resp = self
            .http
            .post(format!(
                "{}/repositories/{}/commit/{sha}/statuses/build",
                self.api, want.repository
            ))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await;
        checked(resp, "posting the build status").await.map(drop)
    }

    /// The full hash of `sha` (pull-request deliveries carry 12 hex digits; a status is safest
    /// on the full hash).
    async fn full_hash(&self, repository: &str, sha: &str) -> Result<String, SendError> {
        if sha.len() == 40 {
            return Ok(sha.to_owned());
        }
        let cache_key = format!("{repository}@{sha}");
        if let Some(full) = self
            .hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            return Ok(full.clone());
        }
        let resp = self
            .http
            .get(format!(
                "{}/repositories/{repository}/commit/{sha}",
                self.api
            ))
            .bearer_auth(&self.token)
            .send()
            .await;
        let answer = checked(resp, "reading the commit's full hash").await?;
        let full = answer.body["hash"]
            .as_str()
            .filter(|h| h.len() == 40 && h.starts_with(sha))
            .ok_or_else(|| {
                SendError::retry(format!(
                    "Bitbucket's commit answer for {sha} has no matching hash"
                ))
            })?
            .to_owned();
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, full.clone());
        Ok(full)
    }
}
