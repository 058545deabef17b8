//! The accept loop: one task per connection (HTTP/1.1, or HTTP/2 when the client opens with its
//! preface), graceful shutdown with a deadline, and [`ElideSelfWakes`] around every connection.
//!
//! Why not `axum::serve`: hyper's request-body channel wakes the connection task whenever the
//! handler takes a chunk, and the handler runs inside that same task. Tokio treats a task woken
//! by itself as a yield: it re-queues the task and wakes a second worker thread, which costs a
//! futex wake and often a thread hop on every request. Owning the connection task lets the
//! wrapper turn such a wake into an immediate re-poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a client may take its time over, and how long a shutdown waits for it.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// From a connection's start (or the end of its previous response) to the end of a request
    /// head: covers a half-sent head, a connection that never sends anything, and an idle
    /// HTTP/1 keep-alive connection.
    pub header_read_timeout: Duration,
    /// Largest request head (HTTP/1 start line and headers, at least 8 KiB; HTTP/2 header
    /// list); over it, HTTP/1 answers 431.
    pub max_header_bytes: usize,
    /// HTTP/2: a ping after this much silence; no answer within it closes the connection.
    pub http2_keep_alive: Duration,
    /// How long a shutdown lets in-flight requests finish before it ends them.
    pub drain_timeout: Duration,
}

pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
pub const DEFAULT_HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(60);
/// Below Docker's 30 s between SIGTERM and SIGKILL, so the rows are committed first.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            http2_keep_alive: DEFAULT_HTTP2_KEEP_ALIVE,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// After the drain time, what is still running gets this long to send its closing error
/// event and write its row.
const AFTER_DRAIN: Duration = Duration::from_secs(2);

/// Accept and serve connections with `service` until `stop` resolves; then stop accepting and
/// wait until every open connection has finished its in-flight requests, at most
/// `limits.drain_timeout`; then cancel `drain_over` (requests still running end with an error)
/// and give them a moment to say so.
pub async fn serve_connections<S>(
    listener: TcpListener,
    service: S,
    stop: impl Future<Output = ()>,
    limits: ConnectionLimits,
    drain_over: &CancellationToken,
) where
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let tasks = ConnectionTasks::default();
    let mut builder = auto::Builder::new(tasks.clone());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper-util's builder has no separate head limit: the read buffer bounds the head
        // (431 when it is full before the head ends); bodies just come in pieces of this size.
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keep_alive)
        .keep_alive_timeout(limits.http2_keep_alive)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    pause_after_accept_error(&err).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Streams are many small writes: without TCP_NODELAY, Nagle's algorithm and delayed
        // ACKs add tens of milliseconds per event.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let connection = builder
            .serve_connection(
                TokioIo::new(FirstByteDeadline::new(tcp, limits.header_read_timeout)),
                WithPeer(service.clone(), peer),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tasks.spawn(ElideSelfWakes::new(async move {
            if let Err(err) = connection.await {
                tracing::trace!(error = %err, "connection ended with an error");
            }
        }));
    }
    drop(listener);
    // HTTP/2 streams run in tasks of their own (hyper spawns them): the drain waits for those
    // too, not only for the connections.
    let drained = async {
        graceful.shutdown().await;
        tasks.tracker.close();
        tasks.tracker.wait().await;
    };
    tokio::pin!(drained);
    if tokio::time::timeout(limits.drain_timeout, &mut drained)
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = limits.drain_timeout.as_secs(),
            "in-flight requests did not finish within the shutdown timeout; ending them"
        );
        drain_over.cancel();
        if tokio::time::timeout(AFTER_DRAIN, &mut drained)
            .await
            .is_err()
        {
            // A response whose client stopped reading is never polled again, so it cannot end
            // by itself: dropping its task drops its recorder, which writes the row while the
            // log writer is still open.
            tracing::warn!("ending connections still open after the shutdown timeout");
            tasks.abort.cancel();
            tasks.tracker.close();
            tasks.tracker.wait().await;
        }
    }
}

/// Every task the server runs for its clients (connections, and the HTTP/2 streams hyper
/// spawns through it as its executor): tracked, so a shutdown can wait for them, and
/// abortable, so a shutdown can end the ones that never finish.
#[derive(Clone, Default)]
struct ConnectionTasks {
    tracker: TaskTracker,
    abort: CancellationToken,
}

impl ConnectionTasks {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        let abort = self.abort.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = task => {}
                () = abort.cancelled() => {}
            }
        });
    }
}

impl<F> hyper::rt::Executor<F> for ConnectionTasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, task: F) {
        self.spawn(async move {
            task.await;
        });
    }
}

/// hyper's smallest allowed HTTP/1 read buffer.
const MIN_BUF_SIZE: usize = 8192;

/// A connection whose first byte must arrive within a deadline. hyper's header read timeout
/// starts only once the protocol is known, which takes a first byte: without this, a
/// connection that never sends anything would stay open for ever.
pub struct FirstByteDeadline {
    io: TcpStream,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl FirstByteDeadline {
    fn new(io: TcpStream, within: Duration) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
        }
    }
}

impl AsyncRead for FirstByteDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some(deadline) = &mut this.deadline {
            match polled {
                Poll::Ready(Ok(())) if buf.filled().len() > before => this.deadline = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request within the header read timeout",
                    )));
                }
                _ => {}
            }
        }
        polled
    }
}

impl AsyncWrite for FirstByteDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Hands every request of a connection the peer's address (`ConnectInfo<SocketAddr>`), for
/// the admin API's failed-authentication throttle.
#[derive(Clone)]
struct WithPeer<S>(S, std::net::SocketAddr);

impl<S: hyper::service::Service<hyper::Request<Incoming>>>
    hyper::service::Service<hyper::Request<Incoming>> for WithPeer<S>
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.1));
        self.0.call(request)
    }
}

/// A failed `accept`: a client that gave up is nothing; anything else (most likely too many
/// open files) is logged, and accepting pauses for a second so that connections can close.
async fn pause_after_accept_error(err: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How often one poll may re-poll its future after waking itself, before it yields for real
/// (hyper and tokio's co-operative budget wake a task on purpose to make it yield).
const MAX_REPOLLS: usize = 4;

const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// Runs a future so that a wake-up it causes while it is being polled becomes an immediate
/// re-poll instead of a re-schedule. Wakes from anywhere else reach the task as usual.
pub struct ElideSelfWakes<F> {
    future: Pin<Box<F>>,
    shared: Arc<WakeState>,
    waker: Waker,
}

struct WakeState {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for WakeState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let before = self.state.fetch_or(WOKEN, Ordering::AcqRel);
        if before & POLLING == 0 {
            self.task.wake();
        }
    }
}

impl<F: Future> ElideSelfWakes<F> {
    pub fn new(future: F) -> Self {
        let shared = Arc::new(WakeState {
            state: AtomicU8::new(0),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&shared));
        Self {
            future: Box::pin(future),
            shared,
            waker,
        }
    }
}

impl<F: Future> Future for ElideSelfWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.shared.task.register(cx.waker());
        let mut inner = Context::from_waker(&this.waker);
        for _ in 0..=MAX_REPOLLS {
            this.shared.state.store(POLLING, Ordering::Release);
            let polled = this.future.as_mut().poll(&mut inner);
            let state = this.shared.state.swap(0, Ordering::AcqRel);
            if polled.is_ready() {
                return polled;
            }
            if state & WOKEN == 0 {
                return Poll::Pending;
            }
        }
        // Still waking itself: it wants to yield, so let it.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts how often the task itself is woken.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wakes itself `times` times (pending each time), then completes with the poll count.
    struct WakesItself {
        times: usize,
        polls: usize,
    }

    impl Future for WakesItself {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls > self.times {
                return Poll::Ready(self.polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn poll_once<F: Future>(
        future: &mut ElideSelfWakes<F>,
        task: &Arc<CountingWaker>,
    ) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(task));
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_self_wake_becomes_a_re_poll() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut future = ElideSelfWakes::new(WakesItself { times: 2, polls: 0 });
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(3));
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            0,
            "the task was never re-scheduled"
        );
    }

    #[test]
    fn a_future_that_keeps_waking_itself_still_yields() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut future = ElideSelfWakes::new(WakesItself {
            times: 100,
            polls: 0,
        });
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "yielded with one real wake"
        );
        assert_eq!(future.future.polls, MAX_REPOLLS + 1);
    }

    #[test]
    fn a_wake_from_elsewhere_reaches_the_task() {
        /// Pending until its flag is set; hands its waker out.
        struct Parked(Arc<std::sync::Mutex<Option<Waker>>>, Arc<AtomicUsize>);
        impl Future for Parked {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.1.load(Ordering::SeqCst) > 0 {
                    return Poll::Ready(());
                }
                *self.0.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
        let slot = Arc::new(std::sync::Mutex::new(None));
        let flag = Arc::new(AtomicUsize::new(0));
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut future = ElideSelfWakes::new(Parked(Arc::clone(&slot), Arc::clone(&flag)));
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        let waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the future registered a waker");
        flag.store(1, Ordering::SeqCst);
        std::thread::spawn(move || waker.wake()).join().unwrap();
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "the outside wake was passed on"
        );
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(()));
    }
}
