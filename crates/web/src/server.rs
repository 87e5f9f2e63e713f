//! The HTTP edge: our own accept loop over hyper instead of `axum::serve`,
//! so that a public listener has time and connection limits.
//!
//! - **Connection cap** (`HTTP_MAX_CONNECTIONS`): a semaphore permit is
//!   taken before each `accept`; at the cap new connections wait in the
//!   kernel's backlog instead of costing memory here.
//! - **Idle timeout** (`HTTP_IDLE_TIMEOUT_SECS`): hyper's header-read
//!   timer, which starts whenever the server waits for a request head (a
//!   new connection, or a kept-alive one after its response): a connection
//!   that sends nothing that long is closed.
//! - **Header timeout** (`HTTP_HEADER_TIMEOUT_SECS`): from the first byte of
//!   a request head to its end (slowloris: a head sent a byte at a time).
//!   The connection's stream notices the first byte while a head is
//!   awaited and arms a timer; the service disarms it when hyper hands it
//!   the parsed request, and the response body's end re-opens the wait.
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// `HTTP_IDLE_TIMEOUT_SECS` (default 60).
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
            idle_timeout: Duration::from_secs(60),
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
            let phase = Arc::new(Phase::default());
            let io = TokioIo::new(EdgeIo::new(stream, &settings, phase.clone()));
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                phase.head_done();
                req.extensions_mut().insert(ConnectInfo(peer));
                let phase = phase.clone();
                let call = router.clone().oneshot(req);
                async move {
                    let resp = call.await?;
                    Ok::<_, std::convert::Infallible>(resp.map(|b| {
                        axum::body::Body::new(EndNotify {
                            inner: b,
                            phase: Some(phase),
                        })
                    }))
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(settings.idle_timeout.max(settings.header_timeout))
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

/// Where a connection is: awaiting a request head (the header timer may
/// run), or serving one. `generation` counts heads, so a timer armed for
/// one head never fires for the next.
#[derive(Debug)]
struct Phase {
    awaiting_head: AtomicBool,
    generation: AtomicU64,
}

impl Default for Phase {
    fn default() -> Self {
        Self {
            awaiting_head: AtomicBool::new(true),
            generation: AtomicU64::new(0),
        }
    }
}

impl Phase {
    fn head_done(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.awaiting_head.store(false, Ordering::SeqCst);
    }

    fn response_done(&self) {
        self.awaiting_head.store(true, Ordering::SeqCst);
    }
}

/// A response body that reports when hyper is done with it (written out,
/// or the connection gone): the connection awaits its next head from then.
struct EndNotify {
    inner: axum::body::Body,
    phase: Option<Arc<Phase>>,
}

impl Drop for EndNotify {
    fn drop(&mut self) {
        if let Some(p) = self.phase.take() {
            p.response_done();
        }
    }
}

impl http_body::Body for EndNotify {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's stream: reads arm the header timer when the first
/// byte of a head arrives; writes fail once they have made no progress for
/// the write timeout.
pub struct EdgeIo<T> {
    inner: T,
    write_timeout: Duration,
    header_timeout: Duration,
    phase: Arc<Phase>,
    write_stalled: Option<Pin<Box<Sleep>>>,
    /// The header timer and the head it was armed for.
    head_timer: Option<(u64, Pin<Box<Sleep>>)>,
}

impl<T> EdgeIo<T> {
    fn new(inner: T, settings: &EdgeSettings, phase: Arc<Phase>) -> Self {
        Self {
            inner,
            write_timeout: settings.write_timeout,
            header_timeout: settings.header_timeout,
            phase,
            write_stalled: None,
            head_timer: None,
        }
    }

    /// Whether the header timer of the current head has fired.
    fn head_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let current = self.phase.generation.load(Ordering::SeqCst);
        let awaiting = self.phase.awaiting_head.load(Ordering::SeqCst);
        match &mut self.head_timer {
            Some((generation, sleep)) if awaiting && *generation == current => {
                sleep.as_mut().poll(cx).is_ready()
            }
            _ => {
                self.head_timer = None;
                false
            }
        }
    }

    fn write_pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.write_timeout;
        let sleep = self
            .write_stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<R>(&mut self, r: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(v) => {
                self.write_stalled = None;
                Poll::Ready(v)
            }
            Poll::Pending => self.write_pending(cx),
        }
    }
}

fn head_timeout(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the request head did not arrive within {timeout:?}"),
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() > before;
                if got && this.phase.awaiting_head.load(Ordering::SeqCst) {
                    let current = this.phase.generation.load(Ordering::SeqCst);
                    let armed = this
                        .head_timer
                        .as_ref()
                        .is_some_and(|(generation, _)| *generation == current);
                    if !armed {
                        // The first byte of a head: its clock starts now.
                        this.head_timer =
                            Some((current, Box::pin(tokio::time::sleep(this.header_timeout))));
                    } else if this.head_expired(cx) {
                        return Poll::Ready(Err(head_timeout(this.header_timeout)));
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.head_expired(cx) {
                    Poll::Ready(Err(head_timeout(this.header_timeout)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EdgeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.written(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.written(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.written(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.written(r, cx)
    }
}
