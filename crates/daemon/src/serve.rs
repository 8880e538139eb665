//! The HTTP server under the router: header-read and whole-request timeouts, a connection
//! cap that evicts the longest-idle connection, and an accept loop that backs off when the
//! process runs out of descriptors.
//!
//! Why not `axum::serve`: it has neither a header-read timeout nor a connection cap, so a
//! few hundred idle sockets with partial headers use up the process's descriptors, and
//! then `/healthz`, the AWS calls and the desired-state read all fail.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Default of [`ServeSettings::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default of [`ServeSettings::header_read_timeout`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of [`ServeSettings::request_timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Read and write buffer of one connection: the endpoints take no request body, and this
/// bounds the memory a connection that sends headers forever can hold.
const MAX_BUF_SIZE: usize = 64 * 1024;
/// How long shutdown lets in-flight responses finish before it closes every connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept that failed for lack of descriptors or memory: the pending
/// connection stays in the backlog, so accepting again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often connections are checked against the request timeout.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Limits of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSettings {
    /// Connections open at once. At the cap, a new connection evicts the one that has been
    /// idle longest (no request in flight), so a health check always gets through.
    pub max_connections: usize,
    /// Time to receive a request's whole head, from the connection's start or the end of
    /// the previous response; it is also the idle keep-alive timeout.
    pub header_read_timeout: Duration,
    /// Time from a request's head to the last byte of its response.
    pub request_timeout: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight
/// responses finish for a moment and closes every connection.
///
/// # Guarantees
/// At most `max_connections` connections are served (plus the ones being closed), so the
/// process keeps descriptors for AWS calls and the desired-state read. A connection is
/// closed when its request head does not arrive within `header_read_timeout`, or its
/// response is not done within `request_timeout`. Returns within about a second of
/// `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(settings.max_connections.max(1)));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_BUF_SIZE);
    let (stop, stopping) = watch::channel(false);
    let reaper = tokio::spawn(reap(Arc::clone(&registry), settings.request_timeout));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                warn!(error = %e, "cannot accept a connection; pausing");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let conn = Conn {
            stream,
            router: router.clone(),
            builder: builder.clone(),
            stopping: stopping.clone(),
        };
        if !registry.admit(conn) {
            debug!("every connection is busy; refused a new one");
        }
    }
    drop(listener);
    let _ = stop.send(true);
    reaper.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, registry.drained())
        .await
        .is_err()
    {
        registry.abort_all();
    }
}

/// `requested`, lowered to half the process's descriptor limit (`RLIMIT_NOFILE`) with a
/// warning: the other half is for AWS calls, the desired-state read and the watcher.
pub fn fit_to_descriptors(requested: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return requested;
    }
    let half = usize::try_from(limit.rlim_cur / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if requested > half {
        warn!(
            requested,
            descriptor_limit = limit.rlim_cur,
            using = half,
            "--http-max-connections is above half the descriptor limit; lowered"
        );
        return half;
    }
    requested
}

/// Errors of one incoming connection, not of the listener: accept the next one at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection waiting to be served.
struct Conn {
    stream: TcpStream,
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    stopping: watch::Receiver<bool>,
}

/// The open connections, by id (in accept order).
struct Registry {
    max: usize,
    inner: Mutex<Inner>,
    closed: Notify,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    conns: BTreeMap<u64, Entry>,
}

struct Entry {
    abort: AbortHandle,
    /// Requests in flight: a request counts from its head until its response body is
    /// done (HTTP/1 without pipelining: 0 or 1).
    in_flight: usize,
    /// When the connection last became idle or busy.
    since: Instant,
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            max,
            inner: Mutex::new(Inner::default()),
            closed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent data (every update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts serving `conn`, evicting the longest-idle connection when at the cap.
    /// False when every connection is busy: `conn` is then closed.
    fn admit(self: &Arc<Self>, conn: Conn) -> bool {
        let mut inner = self.lock();
        let mut evicted = None;
        if inner.conns.len() >= self.max {
            let victim = inner
                .conns
                .iter()
                .filter(|(_, e)| e.in_flight == 0)
                .min_by_key(|(id, e)| (e.since, **id))
                .map(|(id, _)| *id);
            evicted = victim.and_then(|id| inner.conns.remove(&id));
            if evicted.is_none() {
                return false;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        // Registered under the lock, so the task cannot report activity before its entry
        // exists.
        let abort = tokio::spawn(Arc::clone(self).run(id, conn)).abort_handle();
        inner.conns.insert(
            id,
            Entry {
                abort,
                in_flight: 0,
                since: Instant::now(),
            },
        );
        drop(inner);
        // Aborting drops the evicted connection's task, which closes its socket. Outside
        // the lock: the task's own clean-up takes it.
        if let Some(entry) = evicted {
            entry.abort.abort();
        }
        true
    }

    async fn run(self: Arc<Self>, id: u64, conn: Conn) {
        let _gone = Gone {
            registry: Arc::clone(&self),
            id,
        };
        let Conn {
            stream,
            router,
            builder,
            mut stopping,
        } = conn;
        let service = Tracked {
            inner: TowerToHyperService::new(router),
            registry: self,
            id,
        };
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = async {
                // The guard `wait_for` returns is not `Send`: drop it here.
                let _ = stopping.wait_for(|stop| *stop).await;
            } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            // Header timeouts and clients that go away are routine: not worth a warning.
            debug!(error = %e, "HTTP connection ended");
        }
    }

    fn activity(&self, id: u64, delta: isize) {
        if let Some(entry) = self.lock().conns.get_mut(&id) {
            entry.in_flight = entry.in_flight.saturating_add_signed(delta);
            entry.since = Instant::now();
        }
    }

    fn remove(&self, id: u64) {
        let mut inner = self.lock();
        inner.conns.remove(&id);
        if inner.conns.is_empty() {
            self.closed.notify_waiters();
        }
    }

    async fn drained(&self) {
        loop {
            let closed = self.closed.notified();
            if self.lock().conns.is_empty() {
                return;
            }
            closed.await;
        }
    }

    fn abort_all(&self) {
        for entry in std::mem::take(&mut self.lock().conns).into_values() {
            entry.abort.abort();
        }
    }
}

/// Closes connections whose request has taken longer than `limit` (a handler that hangs,
/// or a client that does not read its response).
async fn reap(registry: Arc<Registry>, limit: Duration) {
    let mut every = tokio::time::interval(REAP_EVERY);
    loop {
        every.tick().await;
        let now = Instant::now();
        let late: Vec<Entry> = {
            let mut inner = registry.lock();
            let ids: Vec<u64> = inner
                .conns
                .iter()
                .filter(|(_, e)| e.in_flight > 0 && now.duration_since(e.since) > limit)
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| inner.conns.remove(id)).collect()
        };
        for entry in late {
            debug!("an HTTP request passed its time limit; closing its connection");
            entry.abort.abort();
        }
    }
}

/// Unregisters a connection when its task ends, however it ends.
struct Gone {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Gone {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// Marks its connection busy from a request's head until the response body is done.
struct Busy {
    registry: Arc<Registry>,
    id: u64,
}

impl Busy {
    fn new(registry: Arc<Registry>, id: u64) -> Busy {
        registry.activity(id, 1);
        Busy { registry, id }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.registry.activity(self.id, -1);
    }
}

/// The router as a hyper service that reports each request's activity.
struct Tracked {
    inner: TowerToHyperService<Router>,
    registry: Arc<Registry>,
    id: u64,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(Arc::clone(&self.registry), self.id);
        let response = hyper::service::Service::call(&self.inner, request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| TrackedBody { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection marked busy until hyper drops it (after
/// its last frame).
struct TrackedBody {
    body: AxumBody,
    _busy: Busy,
}

impl Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PARTIAL: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";
    /// Bounds a wait that would hang without the fix; not a timing assertion.
    const HANG_GUARD: Duration = Duration::from_secs(10);

    async fn start(
        settings: ServeSettings,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, settings, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn idle(addr: std::net::SocketAddr) -> TcpStream {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(PARTIAL).await.unwrap();
        s
    }

    /// Reads until the server closes the socket: what it sent.
    async fn until_closed(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(HANG_GUARD, s.read_to_end(&mut out))
            .await
            .expect("the server closes the socket")
            .unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn healthz(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        until_closed(&mut s).await
    }

    #[tokio::test]
    async fn at_the_cap_a_new_connection_evicts_the_longest_idle_one() {
        let (addr, _stop) = start(ServeSettings {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(60),
            ..ServeSettings::default()
        })
        .await;
        let mut oldest = idle(addr).await;
        // Let the server register the first before the second: the order is the point.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut younger = idle(addr).await;
        tokio::time::sleep(Duration::from_millis(50)).await;

        let answer = healthz(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert_eq!(
            until_closed(&mut oldest).await,
            "",
            "the oldest idle one is closed"
        );
        let mut byte = [0u8; 1];
        let still_open =
            tokio::time::timeout(Duration::from_millis(200), younger.read(&mut byte)).await;
        assert!(still_open.is_err(), "the younger one stays: {still_open:?}");
    }

    #[tokio::test]
    async fn a_partial_request_head_is_closed_after_the_header_read_timeout() {
        let (addr, _stop) = start(ServeSettings {
            header_read_timeout: Duration::from_millis(200),
            ..ServeSettings::default()
        })
        .await;
        let mut slow = idle(addr).await;
        let answer = until_closed(&mut slow).await;
        assert!(!answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            ServeSettings::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        let mut slow = idle(addr).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = stop.send(());
        tokio::time::timeout(HANG_GUARD, server)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
        assert_eq!(until_closed(&mut slow).await, "");
    }
}
