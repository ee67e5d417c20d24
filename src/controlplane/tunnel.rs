//! Reaching an API server through something other than a TCP connection to its address: for a
//! vCluster, a port-forward to its control-plane pod through the host cluster's API server, so
//! vcm needs nothing of the host but its API.
//!
//! A [`Tunnel`] opens one byte stream per connection; [`TunnelConnector`] makes that a hyper
//! connector, so HTTP clients (a `kube::Client`, the gateway's pooled client) keep their pooling
//! and TLS on top. The address in a request's URI is never dialled; TLS verifies the server as
//! [`Tunnel::tls_server_name`], a name the cluster's certificate carries.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// One stream to the API server, being opened.
pub type DialFuture = Pin<Box<dyn Future<Output = io::Result<DuplexStream>> + Send>>;

/// A way to open byte streams to one API server.
#[derive(Clone)]
pub struct Tunnel {
    dial: Arc<dyn Fn() -> DialFuture + Send + Sync>,
    tls_server_name: String,
    what: String,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("what", &self.what)
            .field("tls_server_name", &self.tls_server_name)
            .finish_non_exhaustive()
    }
}

// === impl Tunnel ===

impl Tunnel {
    /// A tunnel that opens each stream with `dial`; `what` says where it goes, for people;
    /// TLS verifies the server as `tls_server_name`.
    pub fn new(
        what: impl Into<String>,
        tls_server_name: impl Into<String>,
        dial: impl Fn() -> DialFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            dial: Arc::new(dial),
            tls_server_name: tls_server_name.into(),
            what: what.into(),
        }
    }

    /// The name TLS checks the server's certificate against.
    pub fn tls_server_name(&self) -> &str {
        &self.tls_server_name
    }

    /// Where it goes (`port-forward to pod c-abc-0 in vcm-c-abc on host eks`), for people.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// A hyper connector that opens every connection through this tunnel.
    pub fn connector(&self) -> TunnelConnector {
        TunnelConnector(self.clone())
    }
}

/// A hyper connector over a [`Tunnel`]; the URI it is called with is not dialled.
#[derive(Clone, Debug)]
pub struct TunnelConnector(Tunnel);

impl tower::Service<Uri> for TunnelConnector {
    type Response = TokioIo<TunnelIo>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let dial = (self.0.dial)();
        let what = self.0.what.clone();
        Box::pin(async move {
            let stream = dial
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))?;
            Ok(TokioIo::new(TunnelIo(stream)))
        })
    }
}

/// One tunnelled connection.
#[derive(Debug)]
pub struct TunnelIo(DuplexStream);

impl Connection for TunnelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for TunnelIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tower::Service as _;

    use super::*;

    #[tokio::test]
    async fn each_connection_is_a_new_stream_from_the_dialler_and_the_uri_is_never_dialled() {
        // Arrange: a dialler that hands out one end of an in-memory pipe and echoes on the other.
        let tunnel = Tunnel::new("echo", "localhost", || {
            Box::pin(async {
                let (mine, theirs) = tokio::io::duplex(64);
                tokio::spawn(async move {
                    let (mut r, mut w) = tokio::io::split(theirs);
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
                Ok(mine)
            })
        });
        let mut connector = tunnel.connector();

        // Act
        let io = connector
            .call(Uri::from_static("https://nowhere.invalid:1"))
            .await
            .expect("dialled");
        let mut io = io.into_inner();
        io.write_all(b"ping").await.expect("written");
        let mut got = [0u8; 4];
        io.read_exact(&mut got).await.expect("echoed");

        // Assert
        assert_eq!(&got, b"ping");
        assert_eq!(tunnel.tls_server_name(), "localhost");
    }

    #[tokio::test]
    async fn a_failed_dial_says_where_the_tunnel_goes() {
        let tunnel = Tunnel::new(
            "port-forward to pod p in ns n on host h",
            "localhost",
            || Box::pin(async { Err(io::Error::other("no Ready control-plane pod")) }),
        );
        let err = tunnel
            .connector()
            .call(Uri::from_static("https://x"))
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "port-forward to pod p in ns n on host h: no Ready control-plane pod"
        );
    }
}
