//! The connection loop: what `axum::serve` leaves unset. A new connection
//! must send its first byte, and then its whole request header, each within
//! `header_read_timeout`; a kept-alive connection with no request in flight
//! and no bytes moving for `idle_timeout` is closed; at most
//! `max_connections` are open at once, and one more is closed as soon as it
//! is accepted. (hyper's own header timer starts at the first byte, so a
//! connection that sends nothing is timed here, and it has no idle timer.)
//! With TLS, the handshake follows the first byte, within the same limit.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// Limits of the connection loop.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// Longest wait for a request's header, from the connection's start or
    /// its first byte.
    pub header_read_timeout: Duration,
    /// Longest a kept-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `router` until `shutdown` completes, then lets the requests in
/// flight finish (idle kept-alive connections are closed).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    tls: Option<crate::Tls>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let max = limits.max_connections.max(1);
    let open = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open");
            drop(stream);
            continue;
        };
        let builder = builder.clone();
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first)) => {
                    match peeked {
                        Ok(Ok(n)) if n > 0 => {}
                        // Closed, failed, or silent past the limit.
                        _ => return drop(slot),
                    }
                }
                _ = stop.changed() => return drop(slot),
            }
            match tls {
                None => serve_connection(stream, peer, router, &builder, limits, stop).await,
                Some(crate::Tls(acceptor)) => {
                    // The handshake has the header's time limit.
                    let shake =
                        tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
                    match shake.await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, router, &builder, limits, stop).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a place until it ends: wait for them all.
    let _ = open.acquire_many(max as u32).await;
    Ok(())
}

/// One connection, until it ends, is idle too long, or the server stops.
async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    router: Router,
    builder: &Builder<TokioExecutor>,
    limits: EdgeLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: io,
        activity: activity.clone(),
    };
    let in_service = activity.clone();
    let service = TowerToHyperService::new(
        router
            // The client's address, for the sign-in throttle.
            .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            })
            .map_future(move |answer| {
                let busy = Busy::new(in_service.clone());
                async move {
                    let answer = answer.await;
                    drop(busy);
                    answer
                }
            }),
    );
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            // A request in flight finishes first; an idle connection closes.
            _ = stop.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = activity.idle_for(limits.idle_timeout), if !closing => {
                tracing::debug!(%peer, "idle connection closed");
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// What a connection is doing: when its bytes last moved, and how many of
/// its requests are being answered.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write.
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Completes once no request has been in flight and no byte has moved
    /// for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = last.elapsed();
            if self.busy.load(Ordering::SeqCst) == 0 && quiet >= limit {
                return;
            }
            // While busy, look again a whole limit later.
            let wait = if quiet >= limit { limit } else { limit - quiet };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A request being answered (until its response head is ready).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::SeqCst);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A stream that notes when its bytes move, so that a connection streaming a
/// long answer is not taken for idle.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
