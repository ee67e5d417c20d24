//! A TLS [`Listener`] for `axum::serve`, and the make-service that gives each request its
//! connection's facts: `ConnectInfo<SocketAddr>` (as on the plain listener) and the verified
//! client certificate's [`ClientCertAuth`].
//!
//! NB: handshakes run in their own tasks, bounded in number and time, and finished streams
//! come to `accept` through a channel, so a client that connects and says nothing cannot stall
//! the accept loop for everyone else.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    response::Response,
    serve::{IncomingStream, Listener},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::task::AbortOnDropHandle;

use super::{ClientCertAuth, ClientRules};

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog. Bounds the
/// memory a flood of silent connections can hold.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;
/// Finished handshakes waiting for `accept`.
const ACCEPTED_QUEUE: usize = 64;
/// Pause after a failed `accept(2)` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Accepts TCP connections and hands out the ones whose TLS handshake succeeded.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// The accept loop: stops when the listener is dropped (the port is released with it).
    _acceptor: AbortOnDropHandle<()>,
}

// === impl TlsListener ===

impl TlsListener {
    /// Serves TLS on `listener` with `acceptor`.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(Self {
            local,
            accepted,
            _acceptor: AbortOnDropHandle::new(acceptor),
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // NB: the accept loop never ends while the listener lives; if it did, serving
            // nothing is the honest outcome (the server's shutdown still works).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // NB: without it, a streamed answer (the gateway's: headers, then the body as it comes)
        // waits on Nagle's algorithm for the client's delayed ACK, up to 40 ms per request.
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = async {
                if !starts_with_tls(&tcp).await {
                    answer_plain_http(tcp).await;
                    return None;
                }
                Some(acceptor.accept(tcp).await)
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Some(Ok(tls))) => {
                    let _ = tx.send((tls, remote)).await;
                }
                Ok(None) => {
                    tracing::debug!(%remote, "plain HTTP on the TLS port; told to use https")
                }
                // NB: debug, not warn: scanners and broken clients fail here all day.
                Ok(Some(Err(e))) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}

/// Does the client's first byte open a TLS handshake record? (False also when it closed.)
async fn starts_with_tls(tcp: &TcpStream) -> bool {
    /// Content type of a TLS handshake record, the first byte of every ClientHello.
    const TLS_HANDSHAKE: u8 = 0x16;
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == TLS_HANDSHAKE)
}

/// A plain-HTTP client on the TLS port gets a 400 that says what to do, instead of bytes it
/// cannot read. Nothing it sent is read or echoed.
async fn answer_plain_http(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt as _;

    let body = "this vcm server speaks HTTPS: use an https:// address (VCM_ADDR=https://...)\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// Makes the per-connection service for `axum::serve` over a [`TlsListener`].
#[derive(Debug, Clone)]
pub struct TlsMakeService {
    router: Router,
    rules: Arc<ClientRules>,
}

impl TlsMakeService {
    /// Serves `router`, resolving client certificates with `rules`.
    pub fn new(router: Router, rules: Arc<ClientRules>) -> Self {
        Self { router, rules }
    }
}

impl tower::Service<IncomingStream<'_, TlsListener>> for TlsMakeService {
    type Response = WithConnection;
    type Error = Infallible;
    type Future = std::future::Ready<Result<WithConnection, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, TlsListener>) -> Self::Future {
        let (_, conn) = stream.io().get_ref();
        // NB: resolved once per connection: the certificate cannot change within it.
        let client_cert = conn
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|leaf| self.rules.resolve_der(leaf));
        std::future::ready(Ok(WithConnection {
            inner: self.router.clone(),
            remote: *stream.remote_addr(),
            client_cert,
        }))
    }
}

/// The router, for one connection: adds its facts to each request's extensions.
#[derive(Debug, Clone)]
pub struct WithConnection {
    inner: Router,
    remote: SocketAddr,
    client_cert: Option<ClientCertAuth>,
}

impl tower::Service<Request> for WithConnection {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as tower::Service<Request>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.remote));
        if let Some(cert) = &self.client_cert {
            req.extensions_mut().insert(cert.clone());
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::{Extension, body::Body, routing::get};
    use tower::ServiceExt as _;

    use super::*;
    use crate::domain::Principal;

    /// A route answering with the connection facts it finds in its request.
    fn mk_router() -> Router {
        Router::new().route(
            "/",
            get(
                |ConnectInfo(remote): ConnectInfo<SocketAddr>,
                 cert: Option<Extension<ClientCertAuth>>| async move {
                    let who = match cert {
                        Some(Extension(ClientCertAuth::Principal(p))) => p.subject,
                        Some(Extension(ClientCertAuth::Refused(_))) => "refused".into(),
                        None => "none".into(),
                    };
                    format!("{remote} {who}")
                },
            ),
        )
    }

    async fn mk_call(client_cert: Option<ClientCertAuth>) -> String {
        let service = WithConnection {
            inner: mk_router(),
            remote: "192.0.2.1:4242".parse().unwrap(),
            client_cert,
        };
        let response = service
            .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_request_carries_the_peer_address_and_the_certificate_principal() {
        // Arrange
        let principal = Principal::system();

        // Act
        let with_cert = mk_call(Some(ClientCertAuth::Principal(principal.clone()))).await;
        let without = mk_call(None).await;

        // Assert
        assert_eq!(with_cert, format!("192.0.2.1:4242 {}", principal.subject));
        assert_eq!(
            without, "192.0.2.1:4242 none",
            "ConnectInfo is there without a client certificate too"
        );
    }
}
