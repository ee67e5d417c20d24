//! CI OIDC ID tokens (GitHub Actions, Bitbucket Pipelines): no secret is stored anywhere. A
//! token is routed by its (unverified) `iss` to a configured issuer, its signature is checked
//! with the issuer's published keys, then `exp`/`nbf`/`iat` and `aud`, and the first
//! `[[auth.oidc.rules]]` entry whose claims all match decides role and team.
//!
//! Messages name the issuer, the key id and `sub` where that helps; never the token.

use std::sync::Arc;
use std::time::Duration;

use super::jwks::{IssuerKeys, KeyError};
use super::jwt::{Alg, UnverifiedJwt, clip};
use crate::config::auth::check_url;
use crate::config::{OidcIssuerConfig, OidcRule};
use crate::domain::{Principal, RepoGrant};
use crate::error::{Error, Result};

/// How long connecting to an issuer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one discovery or JWKS request may take in all: a request waiting for keys holds a
/// client's request open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed to the discovery document or the keys.
const MAX_REDIRECTS: usize = 3;

/// Verifies CI OIDC tokens of the configured issuers.
#[derive(Debug)]
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
}

#[derive(Debug)]
struct Issuer {
    config: OidcIssuerConfig,
    keys: Arc<IssuerKeys>,
}

// === impl OidcVerifier ===

impl OidcVerifier {
    /// A verifier for `issuers` (checked by `AuthConfig::validate`). Keys are fetched on the
    /// first token, so an issuer that is down at start-up does not stop vcm.
    pub fn new(issuers: &[OidcIssuerConfig]) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // NB: the keys decide who gets in: never follow a redirect off https.
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_url(attempt.url().as_str()) {
                    attempt.error(format!("refusing redirect: {e}"))
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("vcm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the OIDC HTTP client: {e}"))?;
        let issuers = issuers
            .iter()
            .map(|c| Issuer {
                keys: Arc::new(IssuerKeys::new(
                    &c.issuer,
                    c.jwks_url.clone(),
                    http.clone(),
                    Duration::from_secs(c.jwks_min_refetch_secs),
                )),
                config: c.clone(),
            })
            .collect();
        Ok(Self { issuers })
    }

    /// Is `iss` one of the configured issuers?
    pub fn knows(&self, iss: &str) -> bool {
        self.issuer(iss).is_some()
    }

    /// The principal of a token from a configured issuer, or why it is refused.
    pub async fn verify(&self, jwt: &UnverifiedJwt) -> Result<Principal> {
        let iss = jwt.claim_str("iss").unwrap_or_default();
        let Some(issuer) = self.issuer(iss) else {
            return Err(unauthenticated(format!(
                "issuer {:?} is not configured (see [[auth.oidc]])",
                clip(iss)
            )));
        };
        issuer.verify(jwt).await
    }

    fn issuer(&self, iss: &str) -> Option<&Issuer> {
        let iss = iss.trim_end_matches('/');
        self.issuers
            .iter()
            .find(|i| i.config.issuer.trim_end_matches('/') == iss)
    }
}

// === impl Issuer ===

impl Issuer {
    async fn verify(&self, jwt: &UnverifiedJwt) -> Result<Principal> {
        let name = &self.config.issuer;
        let alg = Alg::parse(&jwt.alg)
            .map_err(|e| unauthenticated(format!("token of issuer {name}: {e}")))?;
        let kid = jwt.kid.as_deref();
        let shown_kid = kid.map_or_else(|| "(none)".to_owned(), |k| format!("{:?}", clip(k)));
        let keys = match self.keys.candidates(kid, alg).await {
            Ok(keys) => keys,
            Err(KeyError::Unreachable(why)) => {
                return Err(unauthenticated(format!(
                    "signing key {shown_kid} of issuer {name} is not cached and the issuer \
                     could not be reached to fetch it ({why}); retry later"
                )));
            }
            Err(KeyError::Unknown) => {
                return Err(unauthenticated(format!(
                    "signing key {shown_kid} ({}) is not among the keys issuer {name} publishes",
                    jwt.alg
                )));
            }
        };
        if !keys.iter().any(|k| jwt.verify_signature(alg, k)) {
            return Err(unauthenticated(format!(
                "the token's signature does not verify with key {shown_kid} of issuer {name}"
            )));
        }
        let now = jiff::Timestamp::now().as_second();
        let skew = i64::try_from(self.config.clock_skew_secs).unwrap_or(i64::MAX);
        jwt.check_times(now, skew)
            .map_err(|e| unauthenticated(format!("token of issuer {name}: {e}")))?;
        if !jwt.has_audience(&self.config.audience) {
            return Err(unauthenticated(format!(
                "token of issuer {name} is not for audience {:?}: request that audience in the \
                 job (GitHub: core.getIDToken({:?}); Bitbucket: oidc: audiences)",
                self.config.audience, self.config.audience
            )));
        }
        let Some(sub) = jwt.claim_str("sub").filter(|s| !s.is_empty()) else {
            return Err(unauthenticated(format!(
                "token of issuer {name} has no sub"
            )));
        };
        let Some(rule) = self.config.rules.iter().find(|r| matches(r, jwt)) else {
            return Err(unauthenticated(format!(
                "token of issuer {name} with sub {:?} matches no rule of [[auth.oidc]] {:?}: \
                 add an [[auth.oidc.rules]] entry whose claims match it",
                clip(sub),
                self.config.name
            )));
        };
        let repository = match &rule.pull_request_clusters {
            None => None,
            Some(claim) => match claim_text(jwt, claim)
                .as_deref()
                .and_then(RepoGrant::from_claim)
            {
                Some(grant) => Some(grant),
                None => {
                    return Err(unauthenticated(format!(
                        "token of issuer {name} has no claim {claim:?}, which rule {:?} of \
                         [[auth.oidc]] {:?} names as pull_request_clusters",
                        rule.name.as_deref().unwrap_or_default(),
                        self.config.name
                    )));
                }
            },
        };
        let display = jwt.claim_str("repository").unwrap_or(sub);
        tracing::debug!(
            issuer = %name,
            sub,
            rule = rule.name.as_deref().unwrap_or_default(),
            "OIDC token accepted"
        );
        Ok(Principal {
            subject: format!("oidc:{}/{sub}", self.config.name),
            display: display.to_owned(),
            role: rule.role,
            team: rule.team.clone(),
            repository,
            claims: Some(std::sync::Arc::new(jwt.claims.clone())),
        })
    }
}

/// Every claim of `rule` is in the token with exactly that value (strings; booleans and
/// numbers by their JSON text, e.g. Bitbucket's `compliant = "true"`).
fn matches(rule: &OidcRule, jwt: &UnverifiedJwt) -> bool {
    rule.claims
        .iter()
        .all(|(name, want)| match jwt.claims.get(name) {
            Some(serde_json::Value::String(s)) => s == want,
            Some(v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_))) => {
                serde_json::from_str::<serde_json::Value>(want).is_ok_and(|w| w == *v)
            }
            _ => false,
        })
}

/// A claim's value as text: a string, or a number's JSON text (some issuers send ids as
/// numbers).
fn claim_text(jwt: &UnverifiedJwt, name: &str) -> Option<String> {
    match jwt.claims.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        v @ serde_json::Value::Number(_) => Some(v.to_string()),
        _ => None,
    }
}

fn unauthenticated(message: String) -> Error {
    Error::Unauthenticated(format!("CI OIDC token refused: {message}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn mk_jwt(claims: serde_json::Value) -> UnverifiedJwt {
        use base64::Engine as _;
        let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"RS256"}"#.into()),
            b64(claims.to_string())
        );
        UnverifiedJwt::decode(&token).unwrap()
    }

    fn mk_rule(pairs: &[(&str, &str)]) -> OidcRule {
        OidcRule {
            name: None,
            claims: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            role: Role::Ci,
            team: None,
            pull_request_clusters: None,
        }
    }

    #[test]
    fn a_rule_matches_only_when_every_claim_has_exactly_its_value() {
        // Arrange
        let jwt = mk_jwt(serde_json::json!({
            "repository": "acme/web", "ref": "refs/heads/main", "compliant": true,
            "run_number": 10, "environment": null, "aud": ["vcm"],
        }));
        // Table: (rule, matches, reason).
        let cases = [
            (mk_rule(&[("repository", "acme/web")]), true, "one claim"),
            (
                mk_rule(&[("repository", "acme/web"), ("ref", "refs/heads/main")]),
                true,
                "two",
            ),
            (
                mk_rule(&[("repository", "acme/web"), ("ref", "refs/heads/dev")]),
                false,
                "one off",
            ),
            (
                mk_rule(&[("repository", "acme/we")]),
                false,
                "a prefix is not a match",
            ),
            (
                mk_rule(&[("repository", "ACME/web")]),
                false,
                "case matters",
            ),
            (mk_rule(&[("environment", "")]), false, "null is not empty"),
            (
                mk_rule(&[("environment", "null")]),
                false,
                "null is not a value",
            ),
            (mk_rule(&[("missing", "")]), false, "absent claim"),
            (
                mk_rule(&[("compliant", "true")]),
                true,
                "boolean by its JSON text",
            ),
            (
                mk_rule(&[("run_number", "10")]),
                true,
                "number by its JSON text",
            ),
            (mk_rule(&[("aud", "vcm")]), false, "arrays never match"),
        ];
        for (rule, want, reason) in cases {
            // Act
            let got = matches(&rule, &jwt);

            // Assert
            assert_eq!(got, want, "{reason}");
        }
    }
}
