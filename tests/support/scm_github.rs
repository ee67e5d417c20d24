//! The fake's GitHub endpoints: commit statuses, check runs, installation tokens (part of
//! `scm_fakes.rs`).

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Json, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{APP_ID, GITHUB_TOKEN, Shared, answer, bad_credentials, header, outage, record};

pub async fn github_status(
    State(s): State<Shared>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/statuses/{sha}");
    let (status, resp) = github_status_answer(&s, &h, &body, &sha);
    record(&s, "POST", path, &h, body, status.as_u16());
    resp
}

fn github_status_answer(
    s: &Shared,
    h: &HeaderMap,
    body: &Value,
    sha: &str,
) -> (StatusCode, Response) {
    if header(h, "user-agent").is_empty() {
        let r = json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"});
        return (StatusCode::FORBIDDEN, answer(StatusCode::FORBIDDEN, r));
    }
    let auth = header(h, "authorization");
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    let ok = token == GITHUB_TOKEN || {
        let mut inner = s.inner.lock().unwrap();
        match inner.tokens.get_mut(token) {
            Some((_, Some(0))) => false,
            Some((_, Some(uses))) => {
                *uses -= 1;
                true
            }
            Some((_, None)) => true,
            None => false,
        }
    };
    if !ok {
        return (StatusCode::UNAUTHORIZED, bad_credentials());
    }
    if outage(s) {
        let r = json!({"message": "Server Error"});
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            answer(StatusCode::INTERNAL_SERVER_ERROR, r),
        );
    }
    let description = body["description"].as_str().unwrap_or_default();
    if description.chars().count() > 140 {
        let r = json!({"message": "Validation Failed", "errors": [{"resource": "Status", "code": "custom",
            "field": "description", "message": "description is too long (maximum is 140 characters)"}],
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
            "status": "422"});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            answer(StatusCode::UNPROCESSABLE_ENTITY, r),
        );
    }
    let state = body["state"].as_str().unwrap_or_default();
    if !["error", "failure", "pending", "success"].contains(&state) {
        let r = json!({"message": "Validation Failed", "errors": [{"resource": "Status", "field": "state", "code": "invalid"}]});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            answer(StatusCode::UNPROCESSABLE_ENTITY, r),
        );
    }
    let r = json!({"id": 1, "node_id": "SC_kwDOA", "state": state, "description": description,
        "target_url": body["target_url"], "context": body["context"].as_str().unwrap_or("default"),
        "created_at": "2026-11-30T00:00:00Z", "updated_at": "2026-11-30T00:00:00Z",
        "url": format!("https://api.github.com/repos/o/r/statuses/{sha}")});
    (StatusCode::CREATED, answer(StatusCode::CREATED, r))
}

pub async fn installation_token(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    h: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = format!("/app/installations/{id}/access_tokens");
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let jwt = header(&h, "authorization");
    let verdict = check_jwt(&s.app_key, jwt.strip_prefix("Bearer ").unwrap_or_default());
    if let Err(why) = verdict {
        record(&s, "POST", path, &h, json!({"refused": why}), 401);
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": format!("A JSON web token could not be decoded ({why})")}),
        );
    }
    let mut inner = s.inner.lock().unwrap();
    inner.minted += 1;
    let token = format!("ghs_{}installation{id}token", inner.minted);
    let uses = inner.expire_next_after.take();
    inner.tokens.insert(token.clone(), (id, uses));
    drop(inner);
    record(&s, "POST", path, &h, body, 201);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    answer(
        StatusCode::CREATED,
        json!({"token": token, "expires_at": expires.to_string(),
               "permissions": {"statuses": "write"}, "repository_selection": "all"}),
    )
}

/// An App JWT: RS256 by the App's key, `iss` the App id, `exp` at most 10 minutes after `iat`.
fn check_jwt(public_key: &[u8], jwt: &str) -> Result<(), String> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT".into());
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(format!("{h}.{c}").as_bytes(), &decode(sig)?)
        .map_err(|_| "bad signature".to_owned())?;
    if claims["iss"] != APP_ID {
        return Err(format!("iss {} is not the App", claims["iss"]));
    }
    let now = jiff::Timestamp::now().as_second();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp <= now || iat > now + 60 || exp - iat > 600 {
        return Err(format!("iat {iat} / exp {exp} out of range at {now}"));
    }
    Ok(())
}

/// Whether the request carries an installation token the fake minted with uses left (spends
/// one); the refusal GitHub sends otherwise.
fn refuse_unless_installation(s: &Shared, h: &HeaderMap) -> Option<Response> {
    let auth = header(h, "authorization");
    let token = auth.strip_prefix("Bearer ").unwrap_or_default();
    if token == GITHUB_TOKEN {
        return Some(answer(
            StatusCode::FORBIDDEN,
            json!({"message": "You must authenticate via a GitHub App.", "status": "403"}),
        ));
    }
    let mut inner = s.inner.lock().unwrap();
    match inner.tokens.get_mut(token) {
        Some((_, Some(0))) | None => Some(bad_credentials()),
        Some((_, Some(uses))) => {
            *uses -= 1;
            None
        }
        Some((_, None)) => None,
    }
}

fn server_error() -> Response {
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "Server Error"}),
    )
}

/// GitHub's 422 for a check run body it refuses, if it does.
fn check_run_invalid(body: &Value, create: bool) -> Option<Response> {
    let missing = if create {
        ["name", "head_sha"]
            .into_iter()
            .find(|f| body[*f].as_str().is_none_or(str::is_empty))
    } else {
        None
    };
    let status = body["status"].as_str().unwrap_or("queued");
    let message = if let Some(f) = missing {
        format!("Invalid request. \"{f}\" wasn't supplied.")
    } else if !["queued", "in_progress", "completed"].contains(&status) {
        format!(
            "Invalid request. {status} is not a member of [\"queued\", \"in_progress\", \"completed\"]."
        )
    } else if status == "completed" && body["conclusion"].as_str().is_none() {
        "Invalid request. When \"status\" is \"completed\", \"conclusion\" is required.".to_owned()
    } else {
        return None;
    };
    Some(answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest/checks/runs", "status": "422"}),
    ))
}

pub async fn create_check_run(
    State(s): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/check-runs");
    let refused = refuse_unless_installation(&s, &h)
        .or_else(|| outage(&s).then(server_error))
        .or_else(|| check_run_invalid(&body, true));
    if let Some(r) = refused {
        record(&s, "POST", path, &h, body, r.status().as_u16());
        return r;
    }
    let mut inner = s.inner.lock().unwrap();
    let id = 4_000_000 + inner.check_runs.len() as u64;
    let sha = body["head_sha"].as_str().unwrap_or_default().to_owned();
    inner.check_runs.insert(id, (sha.clone(), body.clone()));
    drop(inner);
    record(&s, "POST", path, &h, body.clone(), 201);
    let mut r = body;
    r["id"] = json!(id);
    r["node_id"] = json!("CR_kwDOA");
    r["html_url"] = json!(format!("https://github.com/{owner}/{repo}/runs/{id}"));
    answer(StatusCode::CREATED, r)
}

pub async fn update_check_run(
    State(s): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/check-runs/{id}");
    let known = s.inner.lock().unwrap().check_runs.contains_key(&id);
    let refused = refuse_unless_installation(&s, &h)
        .or_else(|| outage(&s).then(server_error))
        .or_else(|| {
            (!known).then(|| answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"})))
        })
        .or_else(|| check_run_invalid(&body, false));
    if let Some(r) = refused {
        record(&s, "PATCH", path, &h, body, r.status().as_u16());
        return r;
    }
    let sha = {
        let mut inner = s.inner.lock().unwrap();
        let run = inner.check_runs.get_mut(&id).unwrap();
        run.1 = body.clone();
        run.0.clone()
    };
    record(&s, "PATCH", path, &h, body.clone(), 200);
    let mut r = body;
    r["id"] = json!(id);
    r["head_sha"] = json!(sha);
    answer(StatusCode::OK, r)
}
