//! GitHub commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`) or, for an App, check
//! runs (`POST …/check-runs`, then `PATCH …/check-runs/{id}`), posted with a token or as a
//! GitHub App: a JWT (RS256, signed with the App's key) buys an installation token
//! for the installation a delivery named, kept until five minutes before its hour runs out.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::json;

use super::{Answer, SendError, api_url, checked, cut, http_client};
use crate::domain::{ReportState, StatusReport, StatusWant};

/// GitHub refuses longer descriptions (422).
const MAX_DESCRIPTION: usize = 140;
/// A check run's summary holds at most 65 535 characters.
const MAX_SUMMARY: usize = 65_535;
/// An installation token is used until this long before it expires.
const TOKEN_MARGIN: SignedDuration = SignedDuration::from_mins(5);

/// Posts commit statuses to one GitHub (github.com or an Enterprise Server).
pub struct Github {
    http: reqwest::Client,
    api: String,
    context: String,
    auth: Auth,
    /// Check runs instead of commit statuses (Apps only).
    check_runs: bool,
}

enum Auth {
    Token(String),
    App(App),
}

struct App {
    id: String,
    key: RsaKeyPair,
    /// Installation id → token and its expiry.
    tokens: Mutex<HashMap<u64, (String, Timestamp)>>,
}

impl std::fmt::Debug for Github {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Github")
            .field("api", &self.api)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

// === impl Github ===

impl Github {
    /// Reporting check runs instead of commit statuses: only an App may create them.
    pub fn with_check_runs(self, on: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !on || matches!(self.auth, Auth::App(_)),
            "check_runs = true needs a GitHub App (app_id and private_key): GitHub lets only \
             Apps create check runs"
        );
        Ok(Self {
            check_runs: on,
            ..self
        })
    }

    /// Posting with `token`.
    pub fn with_token(
        api: Option<&str>,
        context: Option<&str>,
        token: String,
    ) -> anyhow::Result<Self> {
        Self::new(api, context, Auth::Token(token))
    }

    /// Posting as App `app_id` with the PEM private key `pem` (PKCS#1, as GitHub hands it out,
    /// or PKCS#8).
    pub fn as_app(
        api: Option<&str>,
        context: Option<&str>,
        app_id: &str,
        pem: &[u8],
    ) -> anyhow::Result<Self> {
        let key = match PrivateKeyDer::from_pem_slice(pem)
            .context("private_key is not a PEM private key")?
        {
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            _ => {
                anyhow::bail!("private_key must be the App's RSA key (GitHub hands out PKCS#1 PEM)")
            }
        }
        .map_err(|e| anyhow::anyhow!("private_key is not a usable RSA key: {e}"))?;
        anyhow::ensure!(!app_id.trim().is_empty(), "app_id is empty");
        Self::new(
            api,
            context,
            Auth::App(App {
                id: app_id.trim().to_owned(),
                key,
                tokens: Mutex::default(),
            }),
        )
    }

    fn new(api: Option<&str>, context: Option<&str>, auth: Auth) -> anyhow::Result<Self> {
        let context = context.unwrap_or("vcm/cluster").to_owned();
        anyhow::ensure!(!context.trim().is_empty(), "context is empty");
        Ok(Self {
            http: http_client()?,
            api: api_url(api, "https://api.github.com")?,
            context,
            auth,
            check_runs: false,
        })
    }

    /// Report `report` on its commit: a commit status, or with check runs on, a check run
    /// (made the first time, updated after). `Ok(Some(id))`: the check run made.
    pub async fn post(&self, report: &StatusReport) -> Result<Option<u64>, SendError> {
        if self.check_runs {
            return self.check_run(report).await;
        }
        let want = &report.want;
        let state = match want.state {
            ReportState::Pending => "pending",
            ReportState::Ready | ReportState::Closed => "success",
            ReportState::Failed | ReportState::Stopped => "failure",
            ReportState::Error => "error",
        };
        let body = json!({
            "state": state,
            "target_url": want.target_url,
            "description": cut(&want.description, MAX_DESCRIPTION),
            "context": self.context,
        });
        let url = format!(
            "{}/repos/{}/statuses/{}",
            self.api, want.repository, want.sha
        );
        self.send(
            reqwest::Method::POST,
            &url,
            &body,
            want,
            "posting the commit status",
        )
        .await
        .map(|_| None)
    }

    /// A check run (`in_progress`, then `completed` with a conclusion), with the whole
    /// description as its summary.
    async fn check_run(&self, report: &StatusReport) -> Result<Option<u64>, SendError> {
        let want = &report.want;
        let (conclusion, title) = match want.state {
            ReportState::Pending => (None, "Making the cluster"),
            ReportState::Ready => (Some("success"), "Cluster ready"),
            ReportState::Failed => (Some("failure"), "Cluster failed"),
            ReportState::Error => (Some("failure"), "vcm could not make the cluster"),
            ReportState::Stopped => (Some("cancelled"), "Cluster deleted"),
            ReportState::Closed => (Some("neutral"), "Cluster deleted: the pull request closed"),
        };
        let mut body = json!({
            "name": self.context,
            "details_url": want.target_url,
            "external_id": want.pr_key,
            "status": if conclusion.is_some() { "completed" } else { "in_progress" },
            "output": {"title": title, "summary": cut(&want.description, MAX_SUMMARY)},
        });
        if let Some(c) = conclusion {
            body["conclusion"] = json!(c);
        }
        let runs = format!("{}/repos/{}/check-runs", self.api, want.repository);
        if let Some(id) = report.check_run_id {
            let url = format!("{runs}/{id}");
            self.send(
                reqwest::Method::PATCH,
                &url,
                &body,
                want,
                "updating the check run",
            )
            .await?;
            return Ok(Some(id));
        }
        body["head_sha"] = json!(want.sha);
        let made = self
            .send(
                reqwest::Method::POST,
                &runs,
                &body,
                want,
                "creating the check run",
            )
            .await?;
        made.body["id"]
            .as_u64()
            .map(Some)
            .ok_or_else(|| SendError::retry("GitHub's check run answer lacks a numeric id"))
    }

    /// `method` `url` with `body`, authenticated; with an App, a 401 mints a fresh
    /// installation token and tries once more (a token can be revoked or expire early).
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &serde_json::Value,
        want: &StatusWant,
        doing: &str,
    ) -> Result<Answer, SendError> {
        for fresh in [false, true] {
            let token = self.token(want, fresh).await?;
            let resp = self
                .http
                .request(method.clone(), url)
                .bearer_auth(&token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .json(body)
                .send()
                .await;
            match checked(resp, doing).await {
                Err(e) if e.status == Some(401) && !fresh && matches!(self.auth, Auth::App(_)) => {
                    self.forget(want.installation_id);
                }
                other => return other,
            }
        }
        Err(SendError::retry(
            "GitHub refused a fresh installation token (401)",
        ))
    }

    async fn token(&self, want: &StatusWant, fresh: bool) -> Result<String, SendError> {
        let app = match &self.auth {
            Auth::Token(t) => return Ok(t.clone()),
            Auth::App(app) => app,
        };
        let installation = match want.installation_id {
            Some(id) => id,
            None => self.installation_of(app, &want.repository).await?,
        };
        let now = Timestamp::now();
        if !fresh {
            let tokens = app.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((token, expires)) = tokens.get(&installation)
                && now + TOKEN_MARGIN < *expires
            {
                return Ok(token.clone());
            }
        }
        let resp = self
            .http
            .post(format!(
                "{}/app/installations/{installation}/access_tokens",
                self.api
            ))
            .bearer_auth(app.jwt()?)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&self.token_permissions())
            .send()
            .await;
        let answer = checked(resp, "minting an installation token").await?;
        let token = answer.body["token"].as_str().map(str::to_owned);
        let expires = answer.body["expires_at"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok());
        let (Some(token), Some(expires)) = (token, expires) else {
            return Err(SendError::retry(
                "GitHub's installation token answer lacks token or expires_at",
            ));
        };
        let mut tokens = app.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert(installation, (token.clone(), expires));
        Ok(token)
    }

    /// What an installation token is asked for: only what vcm posts, so an App without the
    /// other permission still works.
    fn token_permissions(&self) -> serde_json::Value {
        let mut permissions = serde_json::Map::new();
        let name = if self.check_runs {
            "checks"
        } else {
            "statuses"
        };
        permissions.insert(name.to_owned(), json!("write"));
        json!({ "permissions": permissions })
    }

    /// The installation of the App on `repository` (a delivery from a repository webhook
    /// names none).
    async fn installation_of(&self, app: &App, repository: &str) -> Result<u64, SendError> {
        let resp = self
            .http
            .get(format!("{}/repos/{repository}/installation", self.api))
            .bearer_auth(app.jwt()?)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await;
        let answer = checked(resp, "finding the App's installation").await?;
        answer.body["id"]
            .as_u64()
            .ok_or_else(|| SendError::retry("GitHub's installation answer lacks a numeric id"))
    }

    fn forget(&self, installation: Option<u64>) {
        if let (Auth::App(app), Some(id)) = (&self.auth, installation) {
            let mut tokens = app.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.remove(&id);
        }
    }
}

// === impl App ===

impl App {
    /// A JWT for the App: issued a minute ago (clock drift), valid nine minutes.
    fn jwt(&self) -> Result<String, SendError> {
        let now = Timestamp::now().as_second();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD
            .encode(json!({"iat": now - 60, "exp": now + 540, "iss": self.id}).to_string());
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SendError::retry("signing the App's JWT failed"))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}
