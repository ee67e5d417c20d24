//! `/ui`: the web dashboard. A small static page (HTML, one script, one stylesheet, an icon)
//! compiled into the binary, so it works offline and with no CDN; it is a client of the REST
//! API like the CLI, holding the token in the tab's session storage.
//!
//! The page carries no data and no secret, so its files are public, like `/healthz`: they are
//! not audited or rate-limited. Every answer carries a strict Content-Security-Policy (only
//! this origin's script, style and API; no inline script or style, no frames, no forms posted
//! elsewhere) and the other standard security headers.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use sha2::{Digest as _, Sha256};

/// Where the dashboard lives.
pub const PATH: &str = "/ui/";

/// What the page may load and where it may connect: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One of the page's files, with its validator.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// The file, or `304` when the browser's copy is current. `no-cache`: the browser asks
    /// again each time, so a new vcm's page is never mixed with an old one's script.
    fn respond(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag));
        let common = [
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, common).into_response();
        }
        (
            common,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response()
    }
}

static INDEX: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("index.html"), "text/html; charset=utf-8"));
static SCRIPT: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("app.js"), "text/javascript; charset=utf-8"));
static STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("app.css"), "text/css; charset=utf-8"));
static ICON: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("favicon.svg"), "image/svg+xml"));

/// The dashboard's routes, with the security headers on every answer.
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent(PATH) }))
        .route(PATH, get(|h: HeaderMap| async move { INDEX.respond(&h) }))
        .route(
            "/ui/app.js",
            get(|h: HeaderMap| async move { SCRIPT.respond(&h) }),
        )
        .route(
            "/ui/app.css",
            get(|h: HeaderMap| async move { STYLE.respond(&h) }),
        )
        .route(
            "/ui/favicon.svg",
            get(|h: HeaderMap| async move { ICON.respond(&h) }),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

/// The headers every dashboard answer carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), usb=(), payment=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_file_is_served_with_its_type_and_the_security_headers() {
        for (path, kind) in [
            ("/ui/", "text/html"),
            ("/ui/app.js", "text/javascript"),
            ("/ui/app.css", "text/css"),
            ("/ui/favicon.svg", "image/svg+xml"),
        ] {
            let r = get(path, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let h = r.headers();
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
            assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h["referrer-policy"], "no-referrer");
        }
        let r = get("/ui", None).await;
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(r.headers()[header::LOCATION], "/ui/");
    }

    #[tokio::test]
    async fn a_current_copy_is_answered_304_and_an_old_one_gets_the_file() {
        let first = get("/ui/app.js", None).await;
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let again = get("/ui/app.js", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let old = get("/ui/app.js", Some("\"0000\"")).await;
        assert_eq!(old.status(), StatusCode::OK);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
        let html = include_str!("index.html");
        assert!(!html.contains("<style"), "inline style breaks the CSP");
        assert!(!html.contains(" style="), "inline style breaks the CSP");
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..html[i..].find('>').unwrap() + i];
            assert!(
                tag.contains("src=\"/ui/"),
                "inline or foreign script: {tag}"
            );
        }
        for file in [html, include_str!("app.js"), include_str!("app.css")] {
            assert!(!file.contains("http://") && !file.contains("https://"));
        }
        let js = include_str!("app.js");
        assert!(
            !js.contains("innerHTML"),
            "server text must reach the page as text"
        );
        assert!(
            !js.contains("localStorage"),
            "the token stays in session storage"
        );
    }
}
