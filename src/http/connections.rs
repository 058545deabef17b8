//! The accept loop: one task per connection (HTTP/1.1, or HTTP/2 when the client opens with its
//! preface), graceful shutdown, and [`ElideSelfWakes`] around every connection.
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
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// Accept and serve connections with `service` until `stop` resolves; then stop accepting and
/// wait until every open connection has finished its in-flight requests.
pub async fn serve_connections<S>(listener: TcpListener, service: S, stop: impl Future<Output = ()>)
where
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
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
            .serve_connection(TokioIo::new(tcp), WithPeer(service.clone(), peer))
            .into_owned();
        let connection = graceful.watch(connection);
        #[expect(
            clippy::disallowed_methods,
            reason = "connections are drained by `graceful.shutdown()` below, not by app::Tasks"
        )]
        tokio::spawn(ElideSelfWakes::new(async move {
            if let Err(err) = connection.await {
                tracing::trace!(error = %err, "connection ended with an error");
            }
        }));
    }
    drop(listener);
    graceful.shutdown().await;
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
