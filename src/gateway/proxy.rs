//! One request through the gateway: check it, forward it with vcm's credential, stream the
//! answer back (or bridge the upgraded connection), and keep checking while it streams.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{Extensions, HeaderMap, HeaderName, StatusCode, Version, header},
    response::Response,
};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::{
    Gateway, RECHECK_INTERVAL, access,
    audit::{Ended, Record},
    request_info, status_response,
    stream::{Counting, Guarded},
};
use crate::{
    audit::Note,
    domain::ClusterId,
    error::Error,
    http::{ApiError, AppState},
    tls::ClientCertAuth,
};

/// Every method on `/k8s/{id}/…`.
pub(super) async fn handle(State(state): State<AppState>, mut req: Request) -> Response {
    let started = Instant::now();
    let (id, rest) = split_path(req.uri().path());
    let query = req.uri().query().map(str::to_owned);
    let info = request_info::parse(req.method(), &rest, query.as_deref());
    let note = req.extensions().get::<Note>().cloned().unwrap_or_default();
    note.action(audit_action(&info, &rest));
    note.target(&id);
    let Some(gw) = state.gateway.clone() else {
        return status_response(ApiError::not_found("the cluster gateway is not enabled"));
    };
    let upgrade = is_upgrade(req.headers());
    let record = Record {
        id: id.clone(),
        info,
        started,
        principal: String::new(),
        credential: None,
    };

    // Credentials, before anything costs the cluster a thing.
    let addr = state.limits.client_ip(req.extensions(), req.headers());
    if let Err(e) = state.limits.charge_address(addr, false) {
        return record.refused(e);
    }
    let grant =
        match access::authorize(&state, &gw.checks, req.headers(), req.extensions(), &id).await {
            Ok(grant) => grant,
            Err(e) => {
                if matches!(e, Error::Unauthenticated(_)) {
                    let _ = state.limits.charge_address(addr, true);
                    note.auth_failed(&e.to_string());
                    if let Some(metrics) = &state.metrics {
                        metrics.auth_failure(crate::auth::credential_kind(
                            req.headers()
                                .get(axum::http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok()),
                        ));
                    }
                }
                return record.refused(e);
            }
        };
    note.principal(&grant.principal.subject);
    let record = Record {
        principal: grant.principal.subject.clone(),
        credential: grant.credential.clone(),
        ..record
    };
    let streaming = upgrade || record.info.streaming;
    let held = gw.limits.charge(&grant.principal.subject).and_then(|()| {
        if streaming {
            gw.limits.stream(&id)
        } else {
            gw.limits.request(&grant.principal.subject)
        }
    });
    let held = match held {
        Ok(held) => held,
        Err(e) => return record.refused(e),
    };
    gw.activity(&state, &grant.cluster.id);

    let upstream = match gw.upstreams.get(&state.service, &grant.cluster).await {
        Ok(up) => up,
        Err(e) => return record.refused(e),
    };
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let recheck = Recheck {
        headers: req.headers().clone(),
        cert: req.extensions().get::<ClientCertAuth>().cloned(),
        id: id.clone(),
    };
    let upstream_req = match forward_request(req, &upstream.base, &rest, query.as_deref(), upgrade)
    {
        Ok(mut r) => {
            r.headers_mut()
                .insert(header::AUTHORIZATION, upstream.authorization.clone());
            r
        }
        Err(e) => return record.refused(e),
    };
    let mut response = match upstream.client.request(upstream_req).await {
        Ok(r) => r,
        Err(e) => {
            return record.refused(Error::TryLater {
                code: "cluster_unreachable",
                message: format!(
                    "the gateway could not reach the API server of cluster {id}: {e}; retry in a \
                     few seconds"
                ),
                retry_after: std::time::Duration::from_secs(2),
            });
        }
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        // NB: vcm's own credential was refused (a control plane restored from elsewhere):
        // the next request mints a new one.
        gw.upstreams.forget(&grant.cluster.id);
    }
    record.log(response.status());

    let bytes = Arc::new(AtomicU64::new(0));
    let (cancel, done) = if streaming {
        let cancel = CancellationToken::new();
        let done = CancellationToken::new();
        // NB: a watch moving bytes is not activity (an informer's bookmarks would keep a
        // cluster forever); logs -f, exec, attach and port-forward are.
        let counts = upgrade || record.info.verb != "watch";
        tokio::spawn(watchdog(
            state.clone(),
            gw.clone(),
            recheck,
            cancel.clone(),
            done.clone(),
            counts.then(|| bytes.clone()),
            grant.cluster.id.clone(),
        ));
        (Some(cancel), Some(done.drop_guard()))
    } else {
        (None, None)
    };
    let ended = streaming.then(|| Ended(record));

    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) =
        (response.status(), client_upgrade)
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let (parts, _) = response.into_parts();
        tokio::spawn(async move {
            let (client, server) = tokio::join!(client_upgrade, upstream_upgrade);
            let _end = (held, done, ended);
            let (Ok(client), Ok(server)) = (client, server) else {
                tracing::debug!("an upgraded gateway connection failed to switch");
                return;
            };
            let mut client = Counting {
                io: TokioIo::new(client),
                bytes,
            };
            let mut server = TokioIo::new(server);
            let cancel = cancel.unwrap_or_default();
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                () = cancel.cancelled() => {}
            }
        });
        return Response::from_parts(parts, Body::empty());
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let body = Guarded {
        inner: body,
        cancelled: cancel.map(|c| Box::pin(c.cancelled_owned())),
        bytes,
        _held: held,
        _done: done,
        _ended: ended,
    };
    Response::from_parts(parts, Body::new(body))
}

/// `/k8s/<id>/<rest>` → (`<id>`, `/<rest>`), the rest as sent (still percent-encoded).
/// The audit record's action: `k8s <verb> <resource> [<namespace>/]<name>`, or for a path
/// that names no resource `k8s <verb> <path>`.
fn audit_action(info: &request_info::RequestInfo, rest: &str) -> String {
    let mut action = format!("k8s {}", info.verb);
    if info.resource.is_empty() {
        action.push(' ');
        action.push_str(rest);
        return action;
    }
    action.push(' ');
    action.push_str(&info.resource);
    match (info.namespace.as_str(), info.name.as_str()) {
        ("", "") => {}
        ("", name) => action.push_str(&format!(" {name}")),
        (ns, "") => action.push_str(&format!(" {ns}/")),
        (ns, name) => action.push_str(&format!(" {ns}/{name}")),
    }
    action
}

fn split_path(path: &str) -> (String, String) {
    let tail = path.strip_prefix("/k8s/").unwrap_or_default();
    match tail.split_once('/') {
        Some((id, rest)) => (id.to_owned(), format!("/{rest}")),
        None => (tail.to_owned(), "/".to_owned()),
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// The request to send upstream: same method, path, query, headers and body, minus hop-by-hop
/// headers, `Host` and the caller's `Authorization`.
fn forward_request(
    req: Request,
    base: &str,
    rest: &str,
    query: Option<&str>,
    upgrade: bool,
) -> Result<Request, Error> {
    let (mut parts, body) = req.into_parts();
    let uri = match query {
        Some(q) => format!("{base}{rest}?{q}"),
        None => format!("{base}{rest}"),
    };
    parts.uri = uri
        .parse()
        .map_err(|e| Error::Invalid(crate::domain::InvalidField::new("path", format!("{e}"))))?;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::AUTHORIZATION);
    parts.extensions = Extensions::new();
    Ok(Request::from_parts(parts, body))
}

/// Remove the headers that belong to one connection, not to the message (RFC 9110 §7.6.1);
/// an upgrade keeps `Connection: Upgrade` and `Upgrade`, which it needs.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// What a stream's re-checks present: the same credentials as its first request.
struct Recheck {
    headers: HeaderMap,
    cert: Option<ClientCertAuth>,
    id: String,
}

/// While a stream is open: re-check its grant every [`RECHECK_INTERVAL`] and end it when the
/// grant is gone (credential revoked or expired, token revoked, cluster deleted); note activity
/// when bytes moved.
async fn watchdog(
    state: AppState,
    gw: Arc<Gateway>,
    recheck: Recheck,
    cancel: CancellationToken,
    done: CancellationToken,
    bytes: Option<Arc<AtomicU64>>,
    cluster: ClusterId,
) {
    let mut extensions = Extensions::new();
    if let Some(cert) = recheck.cert {
        extensions.insert(cert);
    }
    let mut seen = 0;
    let mut ticks = tokio::time::interval(RECHECK_INTERVAL);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let checked = access::authorize(
            &state,
            &gw.checks,
            &recheck.headers,
            &extensions,
            &recheck.id,
        )
        .await;
        if let Err(e) = checked {
            // NB: a store that cannot answer is not a revocation: the stream goes on.
            if !matches!(e, Error::Store(_) | Error::Other(_)) {
                tracing::info!(
                    target: "vcm::audit", cluster = %recheck.id, reason = %e,
                    "gateway stream ended by vcm"
                );
                cancel.cancel();
                return;
            }
        }
        if let Some(bytes) = &bytes {
            let now = bytes.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                gw.activity(&state, &cluster);
            }
        }
    }
}
