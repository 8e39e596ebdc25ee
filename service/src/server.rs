//! The HTTP server both services run: axum on a listener that caps concurrent connections with
//! a semaphore (connections beyond the cap wait in the accept backlog), sets `TCP_NODELAY`, and
//! stops gracefully on the shutdown token (in-flight requests finish). WebSocket upgrades keep
//! their connection's permit until they close.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A TCP listener that accepts only while fewer than its cap of connections are open.
struct CappedListener {
    /// The bound socket.
    inner: TcpListener,
    /// One permit per open connection.
    permits: Arc<Semaphore>,
}

/// An accepted connection holding its permit until dropped.
struct CappedStream {
    /// The connection.
    inner: TcpStream,
    /// Returned to the listener's semaphore when the connection closes.
    _permit: OwnedSemaphorePermit,
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so acquiring only waits.
        let permit = match self.permits.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("the connection semaphore is never closed"),
        };
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        // Only latency suffers if this fails: small responses would wait for delayed ACKs.
        let _ = stream.set_nodelay(true);
        (
            CappedStream {
                inner: stream,
                _permit: permit,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `router` on `listener` with at most `max_connections` open connections (at least
/// one) until `shutdown` is cancelled, then lets in-flight requests finish and returns.
///
/// # Errors
/// When serving fails for good (accept errors are logged and retried by axum).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let listener = CappedListener {
        inner: listener,
        permits: Arc::new(Semaphore::new(
            max_connections.clamp(1, Semaphore::MAX_PERMITS),
        )),
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn start(max: usize) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let router = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move { serve(listener, router, max, stop).await.unwrap() }
        });
        (addr, stop, task)
    }

    async fn get_on(stream: &mut TcpStream, path: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn an_in_flight_request_finishes_after_shutdown() {
        let (addr, stop, task) = start(10).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let reply = tokio::spawn(async move { get_on(&mut stream, "/slow").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        let reply = reply.await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("slow"), "{reply}");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops")
            .unwrap();
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_until_one_closes() {
        let (addr, stop, _task) = start(1).await;
        let first = TcpStream::connect(addr).await.unwrap();
        // Make sure the first connection is accepted (it holds the only permit).
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        let waiting = tokio::spawn(async move { get_on(&mut second, "/").await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the second connection waits");
        drop(first);
        let reply = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("served once the first closed")
            .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        stop.cancel();
    }
}
