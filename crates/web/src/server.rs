//! The HTTP edge: our own accept loop over hyper instead of `axum::serve`,
//! so that a public listener has time and connection limits.
//!
//! - **Connection cap** (`HTTP_MAX_CONNECTIONS`): a semaphore permit is
//!   taken before each `accept`; at the cap new connections wait in the
//!   kernel's backlog instead of costing memory here.
//! - **Header and idle timeouts** (`HTTP_HEADER_TIMEOUT_SECS`,
//!   `HTTP_IDLE_TIMEOUT_SECS`): hyper's header-read timer. It starts when
//!   the server waits for a request head, which on a kept-alive connection
//!   is right after the previous response, so one timer closes both
//!   slowloris connections and idle keep-alive ones. hyper cannot tell the
//!   two apart, so the shorter of the two settings applies to both.
//! - **Write timeout** (`HTTP_WRITE_TIMEOUT_SECS`): a write that makes no
//!   progress this long (a client that stopped reading a download or an
//!   event stream) closes the connection, so unread responses cannot pin
//!   memory.
//! - The peer address is put into every request as axum's `ConnectInfo`,
//!   for the per-client rate limit.
//!
//! On shutdown it stops accepting, asks every connection to finish its
//! in-flight request and close (`graceful_shutdown`), and waits for them.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits of the HTTP edge (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct EdgeSettings {
    /// `HTTP_HEADER_TIMEOUT_SECS` (default 10).
    pub header_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECS` (default 10; see the module docs).
    pub idle_timeout: Duration,
    /// `HTTP_WRITE_TIMEOUT_SECS` (default 30).
    pub write_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS` (default 4096).
    pub max_connections: usize,
    /// `HTTP_MAX_URI_BYTES` (default 8192): 414 above.
    pub max_uri_bytes: usize,
    /// `HTTP_MAX_HEADER_BYTES` (default 32768): 431 above (all header
    /// names and values together), as is more than 100 headers.
    pub max_header_bytes: usize,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_uri_bytes: 8192,
            max_header_bytes: 32 * 1024,
        }
    }
}

/// Headers accepted before 431 (hyper's own parser allows more, so that
/// the answer is ours, in problem+json).
pub const MAX_HEADERS: usize = 100;

/// Serves `router` on `listener` until `stop` fires, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: EdgeSettings,
    stop: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let tracker = TaskTracker::new();
    // hyper's buffer and header count sit above our own limits: what goes
    // beyond ours is refused by the router with a problem+json body; only
    // what goes beyond these gets hyper's bare status line.
    let max_buf = (settings.max_header_bytes + settings.max_uri_bytes).max(64 * 1024) * 4;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop.clone();
        tracker.spawn(async move {
            let io = TokioIo::new(WriteTimeout::new(stream, settings.write_timeout));
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_timeout.min(settings.idle_timeout))
                .max_buf_size(max_buf)
                .max_headers(MAX_HEADERS * 2);
            let conn = builder.serve_connection(io, svc);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// A stream whose writes fail once they have made no progress for
/// `timeout` (reads are left alone: the header timer and the request
/// timeout bound those).
pub struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn on_pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn done<R>(&mut self, r: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(v) => {
                self.stalled = None;
                Poll::Ready(v)
            }
            Poll::Pending => self.on_pending(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.done(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.done(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.done(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.done(r, cx)
    }
}
