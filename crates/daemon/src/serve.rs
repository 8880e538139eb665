//! The HTTP server under the router: header-read and whole-request timeouts, a connection
//! cap that evicts the longest-idle connection, and an accept loop that backs off when the
//! process runs out of descriptors.
//!
//! "Idle" is judged by what the client has sent, not by when the server last saw a
//! request: a connection is idle only when no request is in flight, the server is not in
//! the middle of reading from it, and the kernel holds no bytes of it that could complete
//! a request head (before the server's first read: no complete head by `httparse`, the
//! parser hyper uses; after: no unread byte at all). So a client whose request head has
//! arrived is never evicted in favour of slowloris sockets, even when the server has not
//! yet got round to reading it (a new connection's task may wait behind hundreds of
//! accepts on a loaded machine). When nothing is idle, the accept loop waits (the new
//! connection stays in the listen backlog) instead of closing the newcomer.
//!
//! Why not `axum::serve`: it has neither a header-read timeout nor a connection cap, so a
//! few hundred idle sockets with partial headers use up the process's descriptors, and
//! then `/healthz`, the AWS calls and the desired-state read all fail.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
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
    /// idle longest (no request in flight and nothing sent that the server has not read),
    /// so a health check always gets through; when none is idle, the new connection waits
    /// in the listen backlog until one is.
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
/// At most `max_connections` connections are served, plus up to a quarter as many evicted
/// ones whose sockets are being closed and one accepted connection waiting for a place, so
/// the process keeps descriptors for AWS calls and the desired-state read however fast
/// clients connect. A connection is closed when its request head does not arrive within
/// `header_read_timeout`, or its response is not done within `request_timeout`. A
/// connection whose request head the kernel has received is not evicted before the server
/// has read it. Returns within about a second of `shutdown`.
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
    'accept: loop {
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
        let mut conn = Conn {
            stream,
            router: router.clone(),
            builder: builder.clone(),
            stopping: stopping.clone(),
        };
        let mut waited = false;
        loop {
            // Created before the attempt, so a change in between is not missed.
            let changed = registry.changed.notified();
            match registry.admit(conn) {
                Ok(()) => break,
                Err(back) => conn = *back,
            }
            if !waited {
                debug!("no connection is idle; the new one waits for a place");
                waited = true;
            }
            tokio::select! {
                () = &mut shutdown => break 'accept,
                () = changed => {}
            }
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
    /// Evicted or timed-out connections whose sockets may still be open (their task has
    /// been aborted but not dropped yet): beyond this many, the accept loop waits.
    max_closing: usize,
    inner: Mutex<Inner>,
    /// Every connection is gone.
    closed: Notify,
    /// A connection may have become idle or gone: the accept loop can try again.
    changed: Notify,
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
    /// The socket, to ask the kernel whether the client sent bytes not read yet. Open
    /// while the entry exists: [`Watched`] removes the entry before it closes the socket.
    fd: RawFd,
    /// Where the server is in reading the connection: bits [`READING`] and [`CONSUMED`]
    /// (see [`Watched`]).
    reading: Arc<AtomicU8>,
    /// Aborted (evicted or past its time limit); the entry goes when the socket closes.
    closing: bool,
}

impl Entry {
    /// Marks the connection closing: the handle to abort its task, outside the lock (the
    /// task's own clean-up takes it).
    fn close(&mut self) -> AbortHandle {
        self.closing = true;
        self.abort.clone()
    }

    /// Whether evicting the connection could cut off a request: one in flight, one the
    /// server is reading, or unread bytes in the kernel that may complete a request head.
    /// Before the server has read any byte, the kernel holds all the client sent, so a
    /// partial head there (a slowloris) does not count; after, any unread byte does.
    fn may_hold_a_request(&self) -> bool {
        if self.in_flight > 0 {
            return true;
        }
        let before = self.reading.load(Ordering::SeqCst);
        if before & READING != 0 {
            return true;
        }
        // SAFETY: an entry exists only while its socket is open: `Watched::drop` removes
        // it under the registry lock before the socket closes, and this runs under that
        // lock, so the descriptor cannot be closed (or reused) while it is borrowed here.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let held = if before & CONSUMED == 0 {
            unread_bytes_may_be_a_request(fd)
        } else {
            has_unread_bytes(fd)
        };
        // A read that took bytes meanwhile leaves `reading` changed: it sets READING
        // before it starts and keeps it until a read finds nothing.
        held || self.reading.load(Ordering::SeqCst) != before
    }
}

/// [`Entry::reading`]: a read has started, or returned bytes hyper may not have handled
/// yet; cleared when a read finds nothing (hyper has handled all it read and waits).
const READING: u8 = 1;
/// [`Entry::reading`]: some read returned bytes.
const CONSUMED: u8 = 2;
/// How much of a new connection's unread bytes is looked at for a complete request head.
/// A longer partial head counts as a request (it is evicted once the server has read it).
const PEEK_HEAD: usize = 4096;
/// Headers a peeked request head may have (hyper's default limit).
const PEEK_HEADERS: usize = 100;

/// Whether the unread bytes of a connection the server has not read from yet may hold a
/// request head: a complete one, one longer than [`PEEK_HEAD`], or bytes the parser
/// rejects (hyper answers those itself). False for nothing sent, a closed socket, or a
/// short partial head.
fn unread_bytes_may_be_a_request(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; PEEK_HEAD];
    let n = peek(fd, &mut buf);
    if n == 0 {
        return false;
    }
    let mut headers = [httparse::EMPTY_HEADER; PEEK_HEADERS];
    match httparse::Request::new(&mut headers).parse(&buf[..n]) {
        Ok(httparse::Status::Partial) => n == buf.len(),
        Ok(httparse::Status::Complete(_)) | Err(_) => true,
    }
}

/// Whether the kernel holds received bytes of `fd` that no one has read yet. False for a
/// socket the peer closed or reset: evicting it cuts off nothing.
fn has_unread_bytes(fd: BorrowedFd<'_>) -> bool {
    peek(fd, &mut [0u8; 1]) > 0
}

/// Copies up to `buf.len()` unread bytes of `fd` into `buf`, leaving them unread: how
/// many. 0 when there are none, the peer closed the socket, or it failed.
fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> usize {
    // SAFETY: `fd` is open for the borrow's lifetime; recv writes at most `buf.len()`
    // bytes into `buf`; MSG_PEEK leaves the data for the connection's own reads and
    // MSG_DONTWAIT keeps it from blocking.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).unwrap_or(0)
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            max,
            max_closing: (max / 4).max(1),
            inner: Mutex::new(Inner::default()),
            closed: Notify::new(),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves consistent data (every update is one
        // assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts serving `conn`, evicting the longest-idle connection when at the cap.
    /// Gives `conn` back when no connection is idle (see [`Entry::may_hold_a_request`]).
    ///
    /// An evicted connection keeps its entry (marked closing) until its task is dropped
    /// and its socket closed; while `max_closing` are, `conn` is given back too, so a flood
    /// of connections cannot outrun the closing of the sockets it evicts.
    fn admit(self: &Arc<Self>, conn: Conn) -> Result<(), Box<Conn>> {
        let mut inner = self.lock();
        let closing = inner.conns.values().filter(|e| e.closing).count();
        let mut evicted = None;
        if inner.conns.len() - closing >= self.max && closing < self.max_closing {
            let mut idle: Vec<(Instant, u64)> = inner
                .conns
                .iter()
                .filter(|(_, e)| !e.closing && e.in_flight == 0)
                .map(|(id, e)| (e.since, *id))
                .collect();
            idle.sort_unstable();
            let victim = idle
                .into_iter()
                .map(|(_, id)| id)
                .find(|id| inner.conns.get(id).is_some_and(|e| !e.may_hold_a_request()));
            evicted = victim.and_then(|id| inner.conns.get_mut(&id).map(Entry::close));
        }
        let closing = closing + usize::from(evicted.is_some());
        if inner.conns.len() - closing >= self.max
            || inner.conns.len() >= self.max + self.max_closing
        {
            drop(inner);
            if let Some(abort) = evicted {
                abort.abort();
            }
            return Err(Box::new(conn));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let reading = Arc::new(AtomicU8::new(0));
        let fd = conn.stream.as_raw_fd();
        let io = Watched {
            stream: conn.stream,
            registry: Arc::clone(self),
            id,
            reading: Arc::clone(&reading),
        };
        // Registered under the lock, so the task cannot report activity before its entry
        // exists.
        let abort =
            tokio::spawn(Arc::clone(self).run(id, io, conn.router, conn.builder, conn.stopping))
                .abort_handle();
        inner.conns.insert(
            id,
            Entry {
                abort,
                in_flight: 0,
                since: Instant::now(),
                fd,
                reading,
                closing: false,
            },
        );
        drop(inner);
        // Aborting drops the evicted connection's task, which closes its socket. Outside
        // the lock: the task's own clean-up takes it.
        if let Some(abort) = evicted {
            abort.abort();
        }
        Ok(())
    }

    async fn run(
        self: Arc<Self>,
        id: u64,
        io: Watched,
        router: Router,
        builder: hyper::server::conn::http1::Builder,
        mut stopping: watch::Receiver<bool>,
    ) {
        let service = Tracked {
            inner: TowerToHyperService::new(router),
            registry: self,
            id,
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
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
        if delta < 0 {
            self.changed.notify_one();
        }
    }

    fn remove(&self, id: u64) {
        let mut inner = self.lock();
        inner.conns.remove(&id);
        if inner.conns.is_empty() {
            self.closed.notify_waiters();
        }
        drop(inner);
        self.changed.notify_one();
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
        // Taken out first, so the lock is not held while aborting.
        let conns = std::mem::take(&mut self.lock().conns);
        for entry in conns.into_values() {
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
        let late: Vec<AbortHandle> = registry
            .lock()
            .conns
            .values_mut()
            .filter(|e| !e.closing && e.in_flight > 0 && now.duration_since(e.since) > limit)
            .map(Entry::close)
            .collect();
        for abort in late {
            debug!("an HTTP request passed its time limit; closing its connection");
            abort.abort();
        }
    }
}

/// A connection's socket as hyper reads and writes it. It tells the registry when the
/// server is reading (from the start of a read until a read finds nothing more to read),
/// and unregisters the connection when it is dropped, however the task ends.
struct Watched {
    stream: TcpStream,
    registry: Arc<Registry>,
    id: u64,
    reading: Arc<AtomicU8>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Set before the read: an eviction that finds the kernel drained by this read
        // then sees it.
        this.reading.fetch_or(READING, Ordering::SeqCst);
        let filled = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        let got_bytes = matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > filled;
        if got_bytes {
            this.reading.fetch_or(CONSUMED, Ordering::SeqCst);
        } else {
            // Pending: hyper has handled everything read so far and waits for more.
            // Nothing read (end of stream or an error): the connection is ending.
            this.reading.fetch_and(!READING, Ordering::SeqCst);
            this.registry.changed.notify_one();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Before the fields drop: the entry goes before the socket closes, so
        // `Entry::fd` never names a closed (or reused) descriptor.
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

    /// The flake of issue 13's e2e run: under a slowloris that reconnects every socket the
    /// server closes, a probe whose task had not run yet counted as the longest-idle
    /// connection once enough newer sockets were accepted, and was evicted before its
    /// request was read. Here the single-threaded runtime makes that order certain: the
    /// probe and two slowloris sockets wait in the backlog before the server runs, so it
    /// accepts all three (the third at the cap) before any connection's task is polled.
    #[tokio::test(flavor = "current_thread")]
    async fn a_request_the_server_has_not_read_yet_is_not_evicted_for_a_newer_idle_socket() {
        let (addr, _stop) = start(ServeSettings {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(60),
            ..ServeSettings::default()
        })
        .await;
        // Blocking connects and writes: the server task cannot run in between.
        let connect = |head: &[u8]| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            std::io::Write::write_all(&mut s, head).unwrap();
            s
        };
        let probe = connect(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let _slow = [connect(PARTIAL), connect(PARTIAL)];
        probe.set_nonblocking(true).unwrap();
        let mut probe = TcpStream::from_std(probe).unwrap();

        let answer = until_closed(&mut probe).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
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
