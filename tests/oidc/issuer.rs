//! A local CI OIDC issuer on 127.0.0.1 speaking the documented wire format: discovery at
//! `<iss>/.well-known/openid-configuration`, JWKS at `<iss>/.well-known/jwks` (GitHub's path)
//! or `<iss>/keys.json` (Bitbucket's), and tokens signed with RSA 2048 or P-256 keys made here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A signing key with its key id.
pub enum Key {
    /// RSA 2048, RS256.
    Rsa(RsaKeyPair, String),
    /// P-256, ES256.
    Ec(EcdsaKeyPair, String),
}

impl Key {
    pub fn rsa(kid: &str) -> Self {
        let kp = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self::Rsa(kp, kid.into())
    }

    pub fn ec(kid: &str) -> Self {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self::Ec(kp, kid.into())
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Rsa(_, kid) | Self::Ec(_, kid) => kid,
        }
    }

    /// The public key as a JWKS entry (GitHub's RSA entries carry `use`, `alg`, `kid`).
    pub fn jwk(&self) -> Value {
        match self {
            Self::Rsa(kp, kid) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                       "n": b64(&c.n), "e": b64(&c.e)})
            }
            Self::Ec(kp, kid) => {
                let point = kp.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        }
    }

    /// The public key's bytes (PKCS#1 DER for RSA): what an alg-confusion attacker uses as an
    /// HMAC secret.
    pub fn public_bytes(&self) -> Vec<u8> {
        match self {
            Self::Rsa(kp, _) => kp.public_key().as_ref().to_vec(),
            Self::Ec(kp, _) => kp.public_key().as_ref().to_vec(),
        }
    }

    /// `header.claims.signature`, with `alg` and `kid` set from this key unless `header`
    /// names them.
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut h = json!({"typ": "JWT", "kid": self.kid(), "alg": match self {
            Self::Rsa(..) => "RS256",
            Self::Ec(..) => "ES256",
        }});
        for (k, v) in header.as_object().cloned().unwrap_or_default() {
            h[k] = v;
        }
        let input = format!(
            "{}.{}",
            b64(h.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Self::Rsa(kp, _) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            Self::Ec(kp, _) => kp.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the issuer serves, changeable while it runs.
#[derive(Default)]
pub struct IssuerState {
    /// The JWKS entries published.
    pub jwks: Mutex<Vec<Value>>,
    /// `true`: every request gets a 503 (the issuer is down).
    pub down: AtomicBool,
    /// How many JWKS requests were served (or refused while down).
    pub jwks_fetches: AtomicUsize,
    /// Where it listens.
    pub addr: Mutex<Option<SocketAddr>>,
}

/// A running issuer; its tasks end with the test's runtime.
pub struct Issuer {
    pub addr: SocketAddr,
    pub state: Arc<IssuerState>,
}

impl Issuer {
    pub async fn start() -> Self {
        let state = Arc::new(IssuerState::default());
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.addr.lock().unwrap() = Some(addr);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, state }
    }

    /// The GitHub-shaped issuer URL.
    pub fn github(&self) -> String {
        format!("http://{}/github", self.addr)
    }

    /// An issuer whose discovery document names another issuer.
    pub fn liar(&self) -> String {
        format!("http://{}/liar", self.addr)
    }

    /// An issuer without discovery: vcm must use the configured `jwks_url`.
    pub fn pinned(&self) -> String {
        format!("http://{}/pinned", self.addr)
    }

    /// The Bitbucket-shaped issuer URL (workspace path as in Bitbucket's).
    pub fn bitbucket(&self) -> String {
        format!(
            "http://{}/2.0/workspaces/acme/pipelines-config/identity/oidc",
            self.addr
        )
    }

    pub fn publish(&self, keys: &[&Key]) {
        *self.state.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn serve(State(state): State<Arc<IssuerState>>, uri: Uri) -> Response {
    let path = uri.path();
    let is_jwks = path.ends_with("/.well-known/jwks") || path.ends_with("/keys.json");
    if is_jwks {
        state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    }
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(prefix) = path.strip_suffix("/.well-known/openid-configuration")
        && !prefix.ends_with("/pinned")
    {
        // The issuer is the URL the document is served under, as OIDC discovery requires.
        let mut issuer = format!("http://{}{prefix}", state.addr.lock().unwrap().unwrap());
        if prefix.ends_with("/liar") {
            issuer = "https://token.actions.githubusercontent.com".into(); // not who it is
        }
        let jwks_uri = if prefix.contains("pipelines-config") {
            format!("{issuer}/keys.json")
        } else {
            format!("{issuer}/.well-known/jwks")
        };
        return Json(json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }))
        .into_response();
    }
    if is_jwks {
        let keys = state.jwks.lock().unwrap().clone();
        return Json(json!({"keys": keys})).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}
